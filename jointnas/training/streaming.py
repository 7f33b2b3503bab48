"""Datasets too large for memory: decoded per batch by DataLoader worker processes.

An image folder (or any map-style ``torch.utils.data.Dataset`` a user passes from Python) is
read the way the torchvision references read ImageNet: worker processes decode each image at
the candidate's resolution (JPEGs in Pillow's reduced-size draft mode), crop and flip it,
and hand back uint8; the main process pins the batch, copies it to the device and finishes
there (float, RandAugment at the recipe's strength, normalisation). One persistent loader
serves every candidate: the resolution and a per-image seed travel with each index, so a
new resolution needs no new workers and the same seed gives the same images whatever the
number of workers.

Bad files do not stop a search: an image that fails to decode is dropped from its batch and
counted in one warning per epoch. A file that is gone (the folder moved or was deleted) ends
the training with one ``DatasetError`` line; checkpoints of finished epochs stay.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Sampler

from jointnas.errors import DatasetError
from jointnas.training import augment as aug
from jointnas.training.sources import Folder, open_image

#: labels that flag an image instead of naming its class
UNREADABLE, GONE = -1, -2
#: validation images are resized to resolution / CROP_PCT, then centre-cropped (timm)
CROP_PCT = 0.875
STATS_IMAGES = 256


def _crop_box(w: int, h: int, policy: aug.Augment, g: torch.Generator) -> tuple[int, ...]:
    """A random-resized crop (left, top, width, height) drawn from ``g``, torchvision's rule."""
    low, high = policy.scale
    for _ in range(10):
        area = w * h * float(torch.empty(1).uniform_(low, high, generator=g))
        log_ratio = float(torch.empty(1).uniform_(math.log(3 / 4), math.log(4 / 3), generator=g))
        cw = round(math.sqrt(area * math.exp(log_ratio)))
        ch = round(math.sqrt(area / math.exp(log_ratio)))
        if 0 < cw <= w and 0 < ch <= h:
            left = int(torch.randint(0, w - cw + 1, (1,), generator=g))
            top = int(torch.randint(0, h - ch + 1, (1,), generator=g))
            return left, top, cw, ch
    side = min(w, h)
    return (w - side) // 2, (h - side) // 2, side, side


def _to_uint8(img: Any, channels: int) -> torch.Tensor:
    """A Pillow image, HWC/HW array or CHW tensor as a uint8 (C, H, W) tensor."""
    if hasattr(img, "convert"):  # Pillow
        a = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
        t = torch.from_numpy(a.copy())
        return t[None] if t.ndim == 2 else t.permute(2, 0, 1)
    t = torch.as_tensor(img)
    if t.ndim == 2:
        t = t[None]
    elif t.ndim == 3 and t.shape[0] not in (1, 3) and t.shape[2] in (1, 3):
        t = t.permute(2, 0, 1)  # HWC
    if t.dtype != torch.uint8:
        t = (t.float().clamp(0, 1) * 255).round().to(torch.uint8)
    if t.shape[0] != channels:
        t = t.expand(3, -1, -1) if channels == 3 else t.float().mean(0, keepdim=True).to(t.dtype)
    return t.contiguous()


def _resize(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """One uint8 (C, H, W) image at h x w, still uint8."""
    return aug.as_uint8(aug.resize(aug.unit(t[None]), (h, w)))[0]


class Items(torch.utils.data.Dataset):
    """Images by key (index, seed, resolution, train), decoded and cropped in a worker."""

    def __init__(self, *, files=None, dataset=None, labels, channels: int, policy) -> None:
        self.files, self.dataset, self.labels = files, dataset, labels
        self.channels, self.policy = channels, policy

    def __len__(self) -> int:
        return len(self.labels)

    def _image(self, i: int, resolution: int) -> torch.Tensor:
        if self.files is not None:
            at_least = math.ceil(resolution / CROP_PCT)
            return _to_uint8(
                open_image(self.files[i], self.channels, at_least=at_least), self.channels
            )
        return _to_uint8(self.dataset[i][0], self.channels)

    def __getitem__(self, key: tuple[int, int, int, bool]) -> tuple[torch.Tensor, int, bool]:
        i, seed, res, train = key
        try:
            t = self._image(i, res)
        except FileNotFoundError:
            return torch.zeros(self.channels, res, res, dtype=torch.uint8), GONE, False
        except (OSError, ValueError, SyntaxError):
            return torch.zeros(self.channels, res, res, dtype=torch.uint8), UNREADABLE, False
        h, w = t.shape[-2:]
        small = min(h, w) < res
        g = torch.Generator().manual_seed(seed)
        if not train:  # resize the shorter side, centre crop (timm's eval transform)
            if self.policy.crop == "resized":
                side = math.ceil(res / CROP_PCT)
                t = _resize(t, max(side, round(h * side / w)), max(side, round(w * side / h)))
                top, left = (t.shape[1] - res) // 2, (t.shape[2] - res) // 2
                return t[:, top : top + res, left : left + res].contiguous(), self.labels[i], small
            return _resize(t, res, res), self.labels[i], small
        if self.policy.crop == "resized":
            left, top, cw, ch = _crop_box(w, h, self.policy, g)
            t = _resize(t[:, top : top + ch, left : left + cw], res, res)
        else:
            t = _resize(t, res, res)
            pad = round(self.policy.pad * res) if self.policy.crop == "shift" else 0
            if pad:
                dx, dy = (int(v) for v in torch.randint(-pad, pad + 1, (2,), generator=g))
                t = F.pad(t, (pad, pad, pad, pad))[
                    :, pad + dy : pad + dy + res, pad + dx : pad + dx + res
                ].contiguous()
        if self.policy.flip and bool(torch.rand(1, generator=g) < 0.5):
            t = t.flip(2)
        return t, self.labels[i], small


class _Plan(Sampler):
    """The batches of keys the next pass reads; set before each pass (persistent workers)."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, int, int, bool]]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


@dataclass(eq=False)
class StreamingDataset:
    """Train/val splits of ``items`` read through one persistent ``DataLoader``."""

    name: str
    items: Items
    train_idx: np.ndarray
    val_idx: np.ndarray
    num_classes: int
    image_size: int
    augment: aug.Augment
    workers: int
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        self._plan = _Plan()
        self._loaders: dict[bool, DataLoader] = {}
        self.unreadable = self.small = 0
        if not self.mean:
            self.mean, self.std = self._stats()

    def __repr__(self) -> str:
        return (
            f"StreamingDataset(name={self.name!r}, train={self.num_train}, "
            f"val={self.num_val}, num_classes={self.num_classes}, workers={self.workers}, "
            f"augment={self.augment.label!r})"
        )

    @property
    def in_channels(self) -> int:
        return self.items.channels

    @property
    def num_train(self) -> int:
        return len(self.train_idx)

    @property
    def num_val(self) -> int:
        return len(self.val_idx)

    def _stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean/std of up to 256 training images (a seeded sample) at 64 px."""
        pick = np.random.default_rng(0).permutation(self.train_idx)[:STATS_IMAGES]
        keys = [(int(i), 0, 64, False) for i in pick]
        read = self._read(keys, torch.device("cpu"), report=False)
        return aug.channel_stats(torch.cat([xb for xb, _ in read]))

    def _loader(self, device: torch.device) -> DataLoader:
        cuda = device.type == "cuda"
        if cuda not in self._loaders:
            self._loaders[cuda] = DataLoader(
                self.items,
                batch_sampler=self._plan,
                num_workers=self.workers,
                pin_memory=cuda,
                persistent_workers=self.workers > 0,
                prefetch_factor=4 if self.workers > 0 else None,
            )
        return self._loaders[cuda]

    def _read(self, keys: list, device: torch.device, batch_size: int = 256, report=True):
        """(uint8 batch, labels) on ``device`` for ``keys``, bad images dropped."""
        self._plan.batches = [keys[i : i + batch_size] for i in range(0, len(keys), batch_size)]
        try:
            for x, y, small in self._loader(device):
                if bool((y == GONE).any()):
                    where = self.items.files[0].parent.parent if self.items.files else "it"
                    raise DatasetError(
                        f"dataset {self.name!r}: image files are gone mid-run "
                        f"(moved or deleted under {where})"
                    )
                ok = y >= 0
                self.unreadable += int((~ok).sum())
                self.small += int(small.sum())
                if not bool(ok.all()):
                    x, y = x[ok], y[ok]
                yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        finally:
            if report:
                self._report()
            self.unreadable = self.small = 0

    def _report(self) -> None:
        if self.unreadable:
            warnings.warn(
                f"dataset {self.name!r}: skipped {self.unreadable} image(s) that failed to decode",
                stacklevel=4,
            )
        if self.small:
            warnings.warn(
                f"dataset {self.name!r}: {self.small} image(s) smaller than the "
                "candidate's resolution were upsampled",
                stacklevel=4,
            )

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        return aug.normalize(x, self.mean, self.std)

    # ``train_batches``, ``val_batches``, ``fit_images``: ``data.ImageData`` says what they do
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
        res = resolution or self.image_size
        base = int(torch.randint(0, 2**62, (1,)))  # the trainer's seeded, checkpointed RNG
        pos = order.tolist()[: None if steps is None else steps * batch_size]
        keys = [(int(self.train_idx[p]), base + k, res, True) for k, p in enumerate(pos)]
        for xb, yb in self._read(keys, device, batch_size):
            yield self._normalize(aug.randaugment(xb.float().div_(255), strength)), yb

    def val_batches(
        self, *, device: torch.device, resolution: int | None = None, batch_size: int = 256
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        res = resolution or self.image_size
        keys = [(int(i), 0, res, False) for i in self.val_idx]
        for xb, yb in self._read(keys, device, batch_size):
            yield self._normalize(xb.float().div_(255)), yb

    def fit_images(
        self, idx: torch.Tensor, *, device: torch.device, resolution: int | None = None
    ) -> torch.Tensor:
        res = resolution or self.image_size
        keys = [(int(self.train_idx[i]), 0, res, False) for i in idx.tolist()]
        return self._normalize(torch.cat([x.float() / 255 for x, _ in self._read(keys, device)]))


def default_workers() -> int:
    """Loader processes: the CPUs this process may use, minus one for training, 1 to 8."""
    import os

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, (cpus or 2) - 1))


def from_folder(
    folder: Folder, *, policy, image_size, workers, split: Callable
) -> StreamingDataset:
    idx_train, idx_val, y, labels = split(folder.labels)
    items = Items(files=folder.files, labels=y, channels=folder.channels, policy=policy)
    return StreamingDataset(
        folder.root.name,
        items,
        idx_train,
        idx_val,
        len(labels),
        image_size or 224,
        policy,
        default_workers() if workers is None else workers,
    )


def from_torch(dataset, *, policy, image_size, workers, split: Callable) -> StreamingDataset:
    """A user's map-style Dataset of (image, label): labels from ``dataset.targets`` when it
    has them (torchvision's convention), else read once from every item."""
    if not hasattr(dataset, "__len__") or len(dataset) < 2:
        raise DatasetError("a torch Dataset needs __len__ and at least 2 items")
    targets = getattr(dataset, "targets", None)
    y = np.asarray(
        targets if targets is not None else [int(dataset[i][1]) for i in range(len(dataset))]
    )
    channels = 1 if _is_grey(dataset[0][0]) else 3
    idx_train, idx_val, y, labels = split(y)
    items = Items(dataset=dataset, labels=y, channels=channels, policy=policy)
    size = image_size or int(min(_to_uint8(dataset[0][0], channels).shape[-2:]))
    return StreamingDataset(
        type(dataset).__name__,
        items,
        idx_train,
        idx_val,
        len(labels),
        size,
        policy,
        default_workers() if workers is None else workers,
    )


def _is_grey(img: Any) -> bool:
    if hasattr(img, "mode"):
        return img.mode in ("1", "L", "I", "F")
    t = torch.as_tensor(img)
    return t.ndim == 2 or (t.ndim == 3 and (t.shape[0] == 1 or t.shape[-1] == 1))
