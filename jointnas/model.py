"""Build a torch model from a decoded architecture.

``build_model`` dispatches on the architecture's type (``functools.singledispatch``), so a
second space registers its own builder without touching this one.
"""

from __future__ import annotations

from functools import singledispatch
from typing import Any

import torch
from torch import nn

from jointnas.blocks import ConvBNAct, Head, InvertedResidual
from jointnas.spaces.fbnetv3 import Arch


@singledispatch
def build_model(
    arch: Any, num_classes: int, in_channels: int, *, seed: int | None = None
) -> nn.Module:
    """Build the network for ``arch``; with ``seed``, initialise weights reproducibly without
    touching the caller's global torch RNG."""
    raise TypeError(f"no model builder registered for {type(arch).__name__}")


class FBNetV3Net(nn.Module):
    """Stem conv, stages of inverted-residual blocks, head."""

    def __init__(self, arch: Arch, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.arch = arch
        self.stem = ConvBNAct(in_channels, arch.stem_width, 3, arch.stem_stride, act=arch.stem_act)
        total = sum(stage.depth for stage in arch.stages)
        blocks: list[nn.Module] = []
        cin = arch.stem_width
        for stage in arch.stages:
            for j in range(stage.depth):
                blocks.append(
                    InvertedResidual(
                        cin,
                        stage.width,
                        kernel=stage.kernel,
                        stride=stage.stride if j == 0 else 1,
                        expansion=stage.expansion,
                        se=stage.se,
                        act=stage.act,
                        depth_scale=len(blocks) / max(total - 1, 1),
                    )
                )
                cin = stage.width
        self.blocks = nn.Sequential(*blocks)
        self.head = Head(cin, arch.head_width, num_classes, arch.head_act)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def init_weights(model: nn.Module) -> None:
    """pycls/timm initialisation: He-normal (fan-out) convs, small-normal classifier, and a
    zero BN scale closing each residual branch so every block starts as the identity, which
    makes the short trainings of a search learn faster than PyTorch's default init."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)
    for m in model.modules():
        if isinstance(m, InvertedResidual) and m.residual:
            nn.init.zeros_(m.project[1].weight)


def _check(num_classes: int, in_channels: int) -> None:
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")


@build_model.register
def _(arch: Arch, num_classes: int, in_channels: int, *, seed: int | None = None) -> nn.Module:
    _check(num_classes, in_channels)
    if seed is None:
        return FBNetV3Net(arch, num_classes, in_channels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return FBNetV3Net(arch, num_classes, in_channels)
