"""FBNetV3's architecture, network and exact analytic cost: the builder and the cost twins.

``FBNetV3Net`` is stem -> stages of inverted-residual blocks -> head; ``part_costs`` /
``arch_cost`` walk the same blocks with plain ints and ``batch_cost`` walks them once for a whole
population with numpy arrays, masking the blocks that a candidate's depth leaves out. Both equal
fvcore's count of the built model (the space contract suite). ``jointnas.spaces.fbnetv3``
declares them as the ``Network`` of its ``Arch`` type, so ``jointnas.cost(arch)`` works too;
this module imports no space module (no cycle).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from jointnas.spaces.nets.blocks import (
    ZERO,
    ConvBNAct,
    Cost,
    Head,
    InvertedResidual,
    Part,
    out_size,
    total_cost,
)
from jointnas.spaces.nets.model import check_task, init_weights, seeded


@dataclass(frozen=True)
class Stage:
    """One stage of inverted-residual blocks (the first block carries the stride)."""

    kernel: int
    expansion: int
    width: int
    depth: int
    stride: int
    se: bool
    act: str


@dataclass(frozen=True)
class Arch:
    """A decoded architecture: everything ``build_model`` and ``cost`` need."""

    resolution: int
    stem_width: int
    stem_stride: int
    stem_act: str
    stages: tuple[Stage, ...]
    head_width: int
    head_act: str


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


def build(arch: Arch, num_classes: int, in_channels: int, *, seed: int | None = None) -> nn.Module:
    """The network of ``arch``, weights drawn from ``seed`` when given."""
    check_task(num_classes, in_channels)
    return seeded(seed, lambda: FBNetV3Net(arch, num_classes, in_channels))


def part_costs(arch: Arch, *, num_classes: int, in_channels: int) -> list[Part]:
    """The stem, each stage and the head: the rows of ``jointnas describe`` and, summed,
    ``arch_cost``."""
    size = arch.resolution
    stem = ConvBNAct.cost(in_channels, arch.stem_width, 3, arch.stem_stride, size)
    size = out_size(size, arch.stem_stride)
    parts = [Part("stem", arch.stem_width, size, stem)]
    cin = arch.stem_width
    for i, stage in enumerate(arch.stages, start=1):
        total = ZERO
        for j in range(stage.depth):
            stride = stage.stride if j == 0 else 1
            total = total + InvertedResidual.cost(
                cin,
                stage.width,
                kernel=stage.kernel,
                stride=stride,
                expansion=stage.expansion,
                se=stage.se,
                size=size,
            )
            size = out_size(size, stride)
            cin = stage.width
        parts.append(Part(f"s{i}", stage.width, size, total))
    head = Head.cost(cin, arch.head_width, num_classes, size)
    return [*parts, Part("head", num_classes, 1, head)]


def arch_cost(arch: Arch, *, num_classes: int, in_channels: int) -> Cost:
    """Exact fvcore flops / numel params / fvcore activations of ``build(arch, ...)``."""
    return total_cost(part_costs(arch, num_classes=num_classes, in_channels=in_channels))


def batch_cost(
    columns: Mapping[str, np.ndarray], preset: Any, *, num_classes: int, in_channels: int
) -> Cost:
    """Vectorised twin of ``arch_cost`` for a population: ``columns`` holds per-row value
    arrays of ``resolution``, ``stem_width`` and each stage's ``s{i}_kernel`` / ``_expansion``
    / ``_width`` / ``_depth`` (``Space.value_columns``); the fixed structure (strides, SE,
    activations, head width, the deepest depth) comes from ``preset``. A Cost of int64 arrays,
    one entry per row, without a Python row loop."""
    size = np.asarray(columns["resolution"]).astype(np.int64)
    stem_width = np.asarray(columns["stem_width"]).astype(np.int64)
    total = ConvBNAct.cost(in_channels, stem_width, 3, preset.stem_stride, size)
    size = out_size(size, preset.stem_stride)
    cin = stem_width
    for i, spec in enumerate(preset.stages, start=1):
        width, depth = columns[f"s{i}_width"], columns[f"s{i}_depth"]
        kernel, expansion = columns[f"s{i}_kernel"], columns[f"s{i}_expansion"]
        for j in range(spec.depth[1]):
            stride = spec.stride if j == 0 else 1
            block = InvertedResidual.cost(
                cin, width, kernel=kernel, stride=stride, expansion=expansion, se=spec.se, size=size
            )
            total = total + (block if j == 0 else block.masked(depth > j))
            size = out_size(size, stride)  # stride > 1 only on the always-present first block
            cin = width
    total = total + Head.cost(cin, preset.head_width, num_classes, size)
    return Cost(*(np.asarray(v, dtype=np.int64) for v in (total.flops, total.params, total.acts)))
