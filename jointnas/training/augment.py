"""Train-time augmentation, on batches, on the training device.

Two parts, as in timm and the torchvision references:

* the **base policy** (``Augment``) belongs to the data: a random crop (shifted with zero
  padding, or random-resized) and a horizontal flip where the task allows it. It is on by
  default for image folders and Fashion-MNIST. ``.npz`` arrays get the shifted crop without
  the flip (nothing is known about their task). Digits (``mnist5k``, ``digits``) get none: a
  mirrored digit is another glyph, and the shifted crop cost 8 points of accuracy at the
  default 2-epoch budget (0.931 -> 0.855 on MNIST-5k, measured); ``--augment crop`` asks for it.
* the **searched strength** is the recipe's ``augment`` in [0, 1]: RandAugment's magnitude as
  a fraction of its range (kornia's ``RandAugment``, two operations; 0 is off), as JAHS-Bench-201
  searches augmentation jointly with the network.

Crop, flip and resize are one ``grid_sample`` over the whole batch: one kernel, on the GPU when
training is there, so a uint8 dataset kept on the device is never copied per step. The random
numbers come from torch's generator of that device, which the trainer seeds (and checkpoints)
per training: no global state of the caller is touched.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from jointnas.errors import DatasetError

CROPS = ("none", "shift", "resized")
#: RandAugment picks its operations once per call; groups of images get separate picks
RANDAUGMENT_GROUPS = 8


@dataclass(frozen=True, kw_only=True)
class Augment:
    """A dataset's base train-time augmentation (see the module docstring)."""

    #: "shift": translate by up to ``pad`` of the side, zero-filled (random crop with padding);
    #: "resized": random-resized crop of ``scale`` of the area; "none": resize only
    crop: str = "shift"
    flip: bool = False
    pad: float = 0.125
    scale: tuple[float, float] = (0.25, 1.0)

    def __post_init__(self) -> None:
        if self.crop not in CROPS:
            raise DatasetError(f"augmentation crop {self.crop!r} is not one of {CROPS}")
        if not 0.0 <= self.pad < 0.5:
            raise DatasetError(f"augmentation pad must be in [0, 0.5), got {self.pad!r}")
        low, high = self.scale
        if not 0.0 < low <= high <= 1.0:
            raise DatasetError(
                f"augmentation scale must satisfy 0 < low <= high <= 1: {self.scale}"
            )

    @property
    def label(self) -> str:
        """The ``--augment`` name of this policy (what a study records)."""
        if self.crop == "none":
            return "none"
        return ("crop" if self.crop == "shift" else "rrc") + ("-flip" if self.flip else "")


#: ``--augment`` names; "auto" picks by source (``default_augment``)
POLICIES: dict[str, Augment] = {
    "none": Augment(crop="none"),
    "crop": Augment(crop="shift"),
    "crop-flip": Augment(crop="shift", flip=True),
    "rrc": Augment(crop="resized"),
    "rrc-flip": Augment(crop="resized", flip=True),
}


def parse_augment(name: str, *, kind: str) -> Augment:
    """The policy named ``name``, or for "auto" the default of a source of ``kind``: "folder"
    (random-resized crop + flip), "objects" (Fashion-MNIST: shifted crop + flip), "arrays"
    (shifted crop, no flip) or "digits" (none; see the module docstring)."""
    if name == "auto":
        defaults = {"folder": "rrc-flip", "objects": "crop-flip", "digits": "none"}
        return POLICIES[defaults.get(kind, "crop")]
    if name not in POLICIES:
        raise DatasetError(f"unknown augmentation {name!r}; choose auto or one of {list(POLICIES)}")
    return POLICIES[name]


def _theta(n: int, policy: Augment, size: int, device: torch.device) -> torch.Tensor:
    """Per-image affine maps (output -> input, normalised coordinates) of crop and flip."""
    sx = torch.ones(n, device=device)
    sy = torch.ones(n, device=device)
    cx = torch.zeros(n, device=device)
    cy = torch.zeros(n, device=device)
    if policy.crop == "shift":
        pad = round(policy.pad * size)
        if pad > 0:  # whole-pixel shifts, so an unresized crop moves pixels exactly
            shifts = torch.randint(-pad, pad + 1, (2, n), device=device).float() * (2.0 / size)
            cx, cy = shifts[0], shifts[1]
    elif policy.crop == "resized":
        low, high = policy.scale
        area = torch.empty(n, device=device).uniform_(low, high)
        log_ratio = torch.empty(n, device=device).uniform_(math.log(3 / 4), math.log(4 / 3))
        ratio = torch.exp(log_ratio)
        sx = torch.sqrt(area * ratio).clamp(max=1.0)
        sy = torch.sqrt(area / ratio).clamp(max=1.0)
        cx = (torch.rand(n, device=device) * 2 - 1) * (1 - sx)
        cy = (torch.rand(n, device=device) * 2 - 1) * (1 - sy)
    if policy.flip:
        sx = torch.where(torch.rand(n, device=device) < 0.5, -sx, sx)
    zero = torch.zeros(n, device=device)
    return torch.stack([torch.stack([sx, zero, cx], 1), torch.stack([zero, sy, cy], 1)], 1)


def crop_flip(x: torch.Tensor, resolution: int, policy: Augment) -> torch.Tensor:
    """Float (N, C, H, W) images randomly cropped and flipped to resolution x resolution."""
    if policy.crop == "none" and not policy.flip:
        return resize(x, resolution)
    if policy.crop != "resized":  # antialiased resize first, then whole-pixel shifts at size
        x = resize(x, resolution)
    theta = _theta(len(x), policy, x.shape[-1], x.device)
    grid = F.affine_grid(theta, [len(x), x.shape[1], resolution, resolution], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def resize(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Float (N, C, H, W) images at size x size (or (height, width)); antialiased when
    shrinking either side."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) == hw:
        return x
    shrink = hw[0] < x.shape[-2] or hw[1] < x.shape[-1]
    return F.interpolate(x, size=hw, mode="bilinear", align_corners=False, antialias=shrink)


def unit(x: torch.Tensor) -> torch.Tensor:
    """Pixels as float32 in [0, 1] (uint8 scaled; a float source is taken as it is)."""
    return x.float().div_(255) if x.dtype == torch.uint8 else x.float()


def as_uint8(x01: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] back to uint8 (rounded, clipped)."""
    return x01.mul(255).round_().clamp_(0, 255).to(torch.uint8)


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of (N, C, H, W) images in [0, 1] units, summed in float64
    chunks (no float copy of a whole uint8 set)."""
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for chunk in x.split(4096):
        c = unit(chunk).double()
        total += c.sum((0, 2, 3))
        squares += c.square().sum((0, 2, 3))
    n = max(1, x.shape[0] * x.shape[2] * x.shape[3])
    mean = total / n
    std = (squares / n - mean.square()).clamp_min(0).sqrt().clamp_min(1e-6)
    return tuple(mean.tolist()), tuple(std.tolist())


@functools.lru_cache(maxsize=32)
def _randaugment(magnitude: int) -> torch.nn.Module:
    """kornia's RandAugment at ``magnitude``, built once: it keeps no state between calls
    (its draws come from torch's generator), and building it per batch is hot-path work."""
    from kornia.augmentation.auto import RandAugment

    return RandAugment(n=2, m=magnitude)


def randaugment(x: torch.Tensor, strength: float) -> torch.Tensor:
    """RandAugment (2 operations) at ``strength`` of its magnitude range, on images in [0, 1].
    kornia draws one pair of operations per call, so the batch is split into groups that each
    draw their own, which keeps images within a batch diverse."""
    if strength <= 0 or not bool(torch.isfinite(x).all()):  # NaN input: let the loss say so
        return x
    x = x.clamp(0.0, 1.0)  # a float source may stray outside [0, 1]; kornia refuses that
    grey = x.shape[1] == 1
    if grey:  # kornia's colour operations need 3 channels
        x = x.expand(-1, 3, -1, -1)
    op = _randaugment(min(29, max(1, round(30 * strength))))  # kornia's m: inside (0, 30)
    out = torch.cat([op(chunk) for chunk in x.chunk(RANDAUGMENT_GROUPS)])
    out = out.clamp_(0.0, 1.0)
    return out.mean(1, keepdim=True) if grey else out


def train_view(
    x01: torch.Tensor, *, resolution: int, policy: Augment, strength: float
) -> torch.Tensor:
    """A training batch in [0, 1]: base crop/flip at ``resolution``, then RandAugment."""
    return randaugment(crop_flip(x01, resolution, policy), strength)


@functools.lru_cache(maxsize=16)
def _moments(
    mean: tuple[float, ...], std: tuple[float, ...], device: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean``/``std`` as (1, C, 1, 1) tensors on ``device``, made once: a host-to-device
    copy per batch would stall a GPU's stream."""

    def shaped(v: tuple[float, ...]) -> torch.Tensor:
        return torch.tensor(v, device=device).view(1, -1, 1, 1)

    return shaped(mean), shaped(std)


def normalize(x01: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Per-channel ``(x - mean) / std`` in place, on ``x01``'s device."""
    m, s = _moments(tuple(mean), tuple(std), str(x01.device))
    return x01.sub_(m).div_(s)
