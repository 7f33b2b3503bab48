"""The plain reference loop ``bench_data.py --only stream`` compares the streaming trainer with.

It is the loop a user would write from the torchvision ImageNet reference, without torchvision
(which does not import here): a map-style Dataset that decodes every file fully with Pillow,
takes a random-resized crop (torchvision's rule, on Python's per-worker seeded RNG) and a
horizontal flip, and returns uint8; the main process normalises and steps. Kept apart from
the benchmark so the reference stays short enough to read at a glance.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from jointnas.spaces.recipe import Recipe
from jointnas.training.augment import POLICIES


class PlainFolder(torch.utils.data.Dataset):
    """The torchvision-style reference: full Pillow decode, random-resized crop, flip, uint8."""

    def __init__(self, files: list[Path], labels: list[int], resolution: int) -> None:
        self.files, self.labels, self.resolution = files, labels, resolution
        self.scale = POLICIES["rrc-flip"].scale  # the streaming policy's range, for parity

    def __len__(self) -> int:
        return len(self.files)

    def _box(self, w: int, h: int) -> tuple[int, int, int, int]:
        """torchvision's RandomResizedCrop.get_params, on Python's per-worker seeded RNG."""
        for _ in range(10):
            area = w * h * random.uniform(*self.scale)
            ratio = math.exp(random.uniform(math.log(3 / 4), math.log(4 / 3)))
            cw, ch = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
            if 0 < cw <= w and 0 < ch <= h:
                left, top = random.randint(0, w - cw), random.randint(0, h - ch)
                return left, top, left + cw, top + ch
        side = min(w, h)
        return (w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        with Image.open(self.files[i]) as img:
            img = img.convert("RGB")
        r = self.resolution
        img = img.resize((r, r), Image.Resampling.BILINEAR, box=self._box(*img.size))
        if random.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1), self.labels[i]


def plain_pass(
    model: torch.nn.Module,
    loader: torch.utils.data.DataLoader,
    mean: torch.Tensor,
    std: torch.Tensor,
) -> float:
    """One pass of the plain loop over ``loader``; train images/s of its steps."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    recipe = Recipe()
    groups = [
        {"params": decay, "weight_decay": recipe.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    opt = torch.optim.SGD(groups, lr=recipe.lr, momentum=0.9, nesterov=True)
    model.to(memory_format=torch.channels_last).train()
    images = 0
    t0 = time.perf_counter()
    for xb, yb in loader:
        x = xb.float().div_(255).sub_(mean).div_(std).contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(model(x), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        images += len(yb)
    return images / (time.perf_counter() - t0)
