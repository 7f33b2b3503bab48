"""Datasets for training candidates: compact in memory when they fit, streamed when not.

NAS trains many candidates on one dataset, so a set that fits is decoded once and kept as
uint8 at its stored resolution (4x less than float32); each batch is resized to the
candidate's resolution, augmented and normalised on the training device (on a GPU the whole
uint8 set moves there once, so no step copies from the host). A set too large for that (an
image folder whose decoded size exceeds ``memory_budget()``, or any map-style torch
``Dataset``) streams through a ``DataLoader`` with worker processes instead
(``jointnas.training.streaming``). Both answer the same three calls the trainer makes
(``train_batches``, ``val_batches``, ``fit_images``).

Every source is split stratified and seeded, and normalised with statistics of the train split
only, so nothing leaks from validation. Fashion-MNIST's official test file is never read here
(``jointnas.training.fashion_mnist``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import torch

from jointnas.errors import DatasetError
from jointnas.training import augment as aug
from jointnas.training import cache, fashion_mnist, sources
from jointnas.training.sources import BUILTIN_SOURCES, IMAGE_EXTENSIONS  # noqa: F401 (API)
from jointnas.training.split import stratified_split

MODES = ("auto", "memory", "stream")
#: the most decoded bytes ``auto`` keeps in memory, whatever the machine has
MEMORY_CAP = 1 << 30


def memory_budget() -> int:
    """Bytes a decoded dataset may take in memory under ``mode="auto"``: a quarter of the
    available memory, at most ``MEMORY_CAP`` (1 GiB), so several workers fit beside it."""
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume little
        available = 4 << 30
    return int(min(available // 4, MEMORY_CAP))


def check_positive(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise DatasetError(f"{name} must be a positive integer, got {value!r}")


class ImageData(Protocol):
    """What the trainer reads: a ``Dataset`` (in memory) or a ``StreamingDataset``. Batches
    come back on ``device``, at ``resolution`` (None: the data's own size), normalised."""

    name: str
    num_classes: int
    augment: aug.Augment

    @property
    def num_train(self) -> int: ...

    @property
    def in_channels(self) -> int: ...

    def train_batches(
        self,
        order: torch.Tensor,
        *,
        batch_size: int,
        device: torch.device,
        resolution: int | None = None,
        strength: float = 0.0,
        steps: int | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``order``'s training batches, augmented (RandAugment at ``strength``), <= steps."""

    def val_batches(
        self, *, device: torch.device, resolution: int | None = None, batch_size: int = 256
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The validation split, unaugmented."""

    def fit_images(
        self, idx: torch.Tensor, *, device: torch.device, resolution: int | None = None
    ) -> torch.Tensor:
        """Training images ``idx``, unaugmented (BatchNorm recalibration)."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train/val images held in memory (uint8, or float32 for float arrays) and their labels.

    ``mean``/``std`` (per channel, in [0, 1] units) default to the train split's; ``augment``
    is the base train-time policy (``jointnas.training.augment``)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    num_classes: int
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    augment: aug.Augment = aug.POLICIES["none"]
    _device: dict[str, tuple[torch.Tensor, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _sizes: dict[int, Dataset] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __repr__(self) -> str:  # shapes, not a dump of every pixel
        return (
            f"Dataset(name={self.name!r}, train={tuple(self.x_train.shape)}, "
            f"val={tuple(self.x_val.shape)}, num_classes={self.num_classes}, "
            f"augment={self.augment.label!r})"
        )

    def __post_init__(self) -> None:
        """Fail fast when a Dataset is built by hand from mismatched tensors."""
        pairs = ((self.x_train, self.y_train), (self.x_val, self.y_val))
        bad = any(x.ndim != 4 or y.ndim != 1 or len(x) != len(y) for x, y in pairs)
        if bad or self.x_train.shape[1:] != self.x_val.shape[1:]:
            shapes = [(tuple(x.shape), tuple(y.shape)) for x, y in pairs]
            raise DatasetError(f"{self.name}: need (N, C, H, W) / (N,) splits, got {shapes}")
        if not self.mean or not self.std:
            mean, std = aug.channel_stats(self.x_train)
            object.__setattr__(self, "mean", mean)
            object.__setattr__(self, "std", std)

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

    def subset(self, *, train: int | None = None, val: int | None = None) -> Dataset:
        """First `train` / `val` examples of each split (already shuffled), for fast tests;
        the normalisation stays the full train split's."""
        check_positive("train", train)
        check_positive("val", val)
        return replace(
            self,
            x_train=self.x_train[:train],
            y_train=self.y_train[:train],
            x_val=self.x_val[:val],
            y_val=self.y_val[:val],
        )

    def at_resolution(self, resolution: int) -> Dataset:
        """Both splits stored at resolution x resolution (same statistics); cached. For code
        that slices the images itself, e.g. a supernet trained at one fixed resolution."""
        check_positive("resolution", resolution)
        if self.x_train.shape[-2:] == (resolution, resolution):
            return self
        if resolution not in self._sizes:  # replace() gives the copy its own empty caches
            self._sizes[resolution] = replace(
                self,
                x_train=_stored(self.x_train, resolution),
                x_val=_stored(self.x_val, resolution),
            )
        return self._sizes[resolution]

    def with_augment(self, policy: aug.Augment) -> Dataset:
        """The same images with another base augmentation policy."""
        return replace(self, augment=policy)

    # -- what the trainer calls ----------------------------------------------------------------
    def _on(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """(x_train, y_train, x_val, y_val) on ``device``, moved once and kept."""
        key = str(device)
        if key not in self._device:
            cuda = device.type == "cuda"
            tensors = (self.x_train, self.y_train, self.x_val, self.y_val)
            self._device[key] = tuple(
                t.pin_memory().to(device, non_blocking=True) if cuda else t for t in tensors
            )
        return self._device[key]

    def normalize(self, x01: torch.Tensor) -> torch.Tensor:
        return aug.normalize(x01, self.mean, self.std)

    def _resolution(self, resolution: int | None) -> int:
        check_positive("resolution", resolution)
        return self.image_size if resolution is None else resolution

    def train_batches(
        self,
        order: torch.Tensor,
        *,
        batch_size: int,
        device: torch.device,
        resolution: int | None = None,
        strength: float = 0.0,
        steps: int | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        res = self._resolution(resolution)
        x, y = self._on(device)[:2]
        order = order.to(device)
        count = -(-len(order) // batch_size) if steps is None else steps
        for step in range(count):
            idx = order[step * batch_size : (step + 1) * batch_size]
            xb = aug.train_view(
                aug.unit(x[idx]), resolution=res, policy=self.augment, strength=strength
            )
            yield self.normalize(xb), y[idx]

    def val_batches(
        self, *, device: torch.device, resolution: int | None = None, batch_size: int = 1000
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        res = self._resolution(resolution)
        x, y = self._on(device)[2:]
        for i in range(0, len(x), batch_size):
            yield (
                self.normalize(aug.resize(aug.unit(x[i : i + batch_size]), res)),
                y[i : i + batch_size],
            )

    def fit_images(
        self, idx: torch.Tensor, *, device: torch.device, resolution: int | None = None
    ) -> torch.Tensor:
        x = self._on(device)[0]
        return self.normalize(aug.resize(aug.unit(x[idx.to(device)]), self._resolution(resolution)))


def _in_memory(name, x, y, classes, *, policy, image_size, **split) -> tuple[Dataset, np.ndarray]:
    idx_train, idx_val, y, labels = stratified_split(name, y, classes, **split)
    # Fancy indexing copies: the tensors never alias a cached, read-only (or mapped) array
    x_train, x_val = (torch.from_numpy(np.ascontiguousarray(x[i])) for i in (idx_train, idx_val))
    if image_size is not None and x_train.shape[-1] != image_size:  # the stored resolution
        x_train, x_val = (_stored(t, image_size) for t in (x_train, x_val))
    yt = torch.from_numpy(y.astype(np.int64))
    data = Dataset(name, x_train, yt[idx_train], x_val, yt[idx_val], len(labels), augment=policy)
    return data, labels


def _stored(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resized in chunks, back to the source's dtype (uint8 stays uint8)."""
    y = torch.cat([aug.resize(aug.unit(c), size) for c in x.split(4096)])
    return aug.as_uint8(y) if x.dtype == torch.uint8 else y


def load_dataset(
    source: Any = "mnist5k",
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    image_size: int | None = None,
    max_images_per_class: int | None = None,
    mode: str = "auto",
    augment: str = "auto",
    workers: int | None = None,
    use_cache: bool = True,
):
    """Load `source` as a seeded, stratified split: a built-in name, an ``.npz``, an image
    folder (``root/<class>/<image>``) or a map-style ``torch.utils.data.Dataset``.

    ``mode``: "memory" (a ``Dataset``), "stream" (a ``streaming.StreamingDataset``; folders and
    torch Datasets) or "auto" (memory when the decoded size fits ``memory_budget()``).
    ``image_size``: the stored resolution in memory (folders default to 32 px); streaming
    decodes at each candidate's resolution. ``augment``: the base policy, "auto" by source
    (``augment.parse_augment``). ``workers``: the streaming loader's processes.
    ``fashion-mnist:N`` first draws a seeded, stratified N of its 60,000 training images.
    """
    if not 0.0 < val_fraction < 1.0:
        raise DatasetError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if mode not in MODES:
        raise DatasetError(f"data mode {mode!r} is not one of {MODES}")
    check_positive("image_size", image_size)
    check_positive("max_images_per_class", max_images_per_class)
    split = {
        "val_fraction": val_fraction,
        "seed": seed,
        "max_images_per_class": max_images_per_class,
    }
    if isinstance(source, torch.utils.data.Dataset):
        from jointnas.training import streaming

        if mode == "memory":
            raise DatasetError("a torch Dataset is streamed; mode='memory' takes files only")
        policy = aug.parse_augment(augment, kind="folder")
        return streaming.from_torch(
            source,
            policy=policy,
            image_size=image_size,
            workers=workers,
            split=lambda y: stratified_split(type(source).__name__, y, [], **split),
        )
    source = str(source)
    path = sources.check_source(source)
    policy = aug.parse_augment(augment, kind=sources.kind(source))
    if path is not None and path.is_dir():
        folder = sources.list_folder(path)
        size = image_size or 32
        decoded = len(folder.files) * folder.channels * size * size
        if mode == "stream" or (mode == "auto" and decoded > memory_budget()):
            from jointnas.training import streaming

            return streaming.from_folder(
                folder,
                policy=policy,
                image_size=image_size,
                workers=workers,
                split=lambda y: stratified_split(path.name, y, list(folder.classes), **split),
            )
        if size > folder.min_side > 0:
            import warnings

            warnings.warn(
                f"{path}: stored size {size} px exceeds the smallest image "
                f"({folder.min_side} px); those images are upsampled",
                stacklevel=2,
            )
        directory = cache.cache_dir() if use_cache else None
        name = cache.key(folder.files, folder.labels, size, folder.channels)
        x, y = cache.cached(name, lambda: sources.decode_folder(folder, size), directory=directory)
        return _in_memory(
            path.name, x, y, list(folder.classes), policy=policy, image_size=None, **split
        )[0]
    if mode == "stream":
        raise DatasetError(
            f"{source}: streaming reads an image folder or a torch Dataset; "
            "arrays are held in memory (use --data auto or memory)"
        )
    name, x, y = sources.read_arrays(source, seed)
    return _in_memory(name, x, y, [], policy=policy, image_size=image_size, **split)[0]


def load_fashion_mnist_test(
    source: str = "fashion-mnist",
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    image_size: int | None = None,
    max_images_per_class: int | None = None,
) -> Dataset:
    """The official 10,000 test images as the validation split of ``load_dataset(source, ...)``.

    Same arguments, same train split; ``x_val``/``y_val`` are the test file's images (at
    `image_size`, normalised with the train split's statistics) instead of the search's
    validation split, so a final model can be trained and scored on it once, after the
    search. Its name is ``"<source name>+test"``: a study refuses it in place of its data.
    """
    fashion_mnist.subset_size(str(source))  # only a Fashion-MNIST source has this test file
    split = {
        "val_fraction": val_fraction,
        "seed": seed,
        "max_images_per_class": max_images_per_class,
    }
    name, x, y = sources.read_arrays(str(source), seed)
    policy = aug.parse_augment("auto", kind="objects")
    data, labels = _in_memory(name, x, y, [], policy=policy, image_size=image_size, **split)
    x_test, y_test = fashion_mnist.raw("test")
    shapes = ["x".join(map(str, a.shape[2:])) for a in (x_test, fashion_mnist.raw("train")[0])]
    if shapes[0] != shapes[1]:
        raise DatasetError(
            f"{fashion_mnist.NAME}: test images are {shapes[0]}, training images {shapes[1]}"
        )
    unseen = np.setdiff1d(y_test, labels)
    if unseen.size:
        raise DatasetError(
            f"{fashion_mnist.NAME}: test labels {unseen.tolist()} are not in the training file"
        )
    xt = torch.from_numpy(np.array(x_test))
    if image_size is not None:
        xt = _stored(xt, image_size)
    yt = torch.from_numpy(np.searchsorted(labels, y_test).astype(np.int64))
    return replace(data, name=f"{data.name}+test", x_val=xt, y_val=yt)
