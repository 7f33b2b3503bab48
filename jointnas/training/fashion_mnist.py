"""Fashion-MNIST, read from the idx files of Debian's ``dataset-fashion-mnist`` package.

``load_dataset("fashion-mnist")`` splits the official 60,000 training images into train and
validation like every source (seeded, stratified, normalised with the train split's
statistics); ``"fashion-mnist:N"`` first draws a seeded, stratified N of them (N images in
all, before the split), for faster searches. The official 10,000-image test file is never
part of a search: neither split that candidates are trained or ranked on comes from it.
``load_fashion_mnist_test`` reads it afterwards, normalised like the search's data, to report
a final model's accuracy on images the search never saw.

The files are looked up in ``/usr/share/datasets/fashion-mnist`` or in the directory that
``JOINTNAS_FASHION_MNIST_DIR`` names. Only numpy and gzip read them: no download.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import re
import struct
import zlib
from pathlib import Path

import numpy as np

from jointnas.errors import DatasetError

NAME = "fashion-mnist"
DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_DIR = "JOINTNAS_FASHION_MNIST_DIR"
TRAIN_IMAGES = 60_000
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_FIX = f"install them with: sudo apt-get install dataset-{NAME}, or set {ENV_DIR}"


def data_dir() -> Path:
    """Where the idx files are looked up: $JOINTNAS_FASHION_MNIST_DIR, else Debian's path."""
    return Path(os.environ.get(ENV_DIR) or DEFAULT_DIR).expanduser()


def subset_size(source: str) -> int | None:
    """N of ``fashion-mnist:N`` (None for plain ``fashion-mnist``); a bad N is a DatasetError."""
    base, colon, size = source.partition(":")
    if base != NAME:
        raise DatasetError(f"not a {NAME} source: {source!r}")
    if not colon:
        return None
    if not re.fullmatch(r"[0-9]+", size) or int(size) < 1:
        raise DatasetError(
            f"dataset {source!r}: the subset size after ':' must be a whole number of images "
            f"from 1 to {TRAIN_IMAGES}, got {size!r}"
        )
    if int(size) > TRAIN_IMAGES:
        raise DatasetError(
            f"dataset {source!r}: asks for {int(size)} images, but the {NAME} training file "
            f"has {TRAIN_IMAGES}"
        )
    return int(size)


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """A uint8 idx file (magic 0x0000080<ndim>, big-endian sizes, payload), read-only."""
    try:
        with gzip.open(path, "rb") as f:
            blob = f.read()
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise DatasetError(
            f"{NAME}: cannot read {path}: {type(e).__name__}: {e} (corrupt or truncated?)"
        ) from e
    header = 4 + 4 * ndim
    if blob[:4] != bytes((0, 0, 0x08, ndim)):
        raise DatasetError(
            f"{NAME}: {path} is not a uint8 idx{ndim} file: magic {blob[:4].hex() or 'missing'}, "
            f"expected 0000080{ndim}"
        )
    if len(blob) < header:
        raise DatasetError(f"{NAME}: {path} is truncated: {len(blob)} bytes, no full header")
    dims = struct.unpack(f">{ndim}I", blob[4:header])
    if len(blob) - header != math.prod(dims):
        raise DatasetError(
            f"{NAME}: {path} is truncated or corrupt: its header promises "
            f"{'x'.join(map(str, dims))} = {math.prod(dims)} bytes, but {len(blob) - header} follow"
        )
    return np.frombuffer(blob, dtype=np.uint8, offset=header).reshape(dims)  # read-only


@functools.lru_cache(maxsize=2)
def _parse(images: Path, labels: Path, stamp: object) -> tuple[np.ndarray, np.ndarray]:
    """Decompress and check once per process (and per file version: `stamp`)."""
    x, y = _read_idx(images, 3), _read_idx(labels, 1)
    if len(x) != len(y):
        raise DatasetError(f"{NAME}: {images} has {len(x)} images but {labels} {len(y)} labels")
    return x[:, None], y  # (N, 1, H, W) uint8, read-only views of the decompressed bytes


def raw(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """The "train" or "test" idx files as read-only uint8 arrays (N, 1, 28, 28) and (N,)."""
    directory = data_dir()
    paths = [directory / name for name in FILES[split]]
    missing = [p.name for p in paths if not p.is_file()]
    if len(missing) == len(paths):
        raise DatasetError(f"{NAME}: no idx files in {directory} ({_FIX})")
    if missing:
        raise DatasetError(f"{NAME}: {directory} lacks {', '.join(missing)} ({_FIX})")
    stats = [p.stat() for p in paths]
    return _parse(*paths, tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in stats))


def _stratified(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of n images, each class in proportion (largest remainder, seeded)."""
    rng = np.random.default_rng(seed)
    classes, y = np.unique(y, return_inverse=True)
    counts = np.bincount(y)
    take, remainder = np.divmod(counts * n, len(y))
    order = np.lexsort((rng.random(len(counts)), -remainder))  # ties broken at random
    take[order[: n - take.sum()]] += 1
    keep = [rng.permutation(np.flatnonzero(y == k))[: take[k]] for k in range(len(classes))]
    return np.sort(np.concatenate(keep))


def read_train(source: str, seed: int) -> tuple[str, np.ndarray, np.ndarray]:
    """(name, x, y) of ``fashion-mnist[:N]``: the training file or its stratified N-subset."""
    n = subset_size(source)
    x, y = raw("train")
    if n is None or n == len(y):
        return NAME, x, y
    if n > len(y):
        raise DatasetError(f"dataset {source!r}: asks for {n} images, but {NAME} has {len(y)}")
    idx = _stratified(y, n, seed)
    return f"{NAME}:{n}", x[idx], y[idx]
