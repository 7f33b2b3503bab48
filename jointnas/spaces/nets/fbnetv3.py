"""FBNetV3's architecture, network and exact analytic cost: the builder and the cost twins.

``FBNetV3Net`` is stem -> stages of inverted-residual blocks -> head; ``arch_cost`` walks the
same blocks with plain ints and ``batch_cost`` walks them once for a whole encoded population
with numpy arrays, masking the blocks that a candidate's depth leaves out. Both equal fvcore's
count of the built model (tests). ``jointnas.spaces.fbnetv3`` registers them with
``jointnas.cost`` and ``jointnas.build_model`` for its ``Arch`` type, so
``jointnas.cost(arch)`` works too; this module imports no space module (no cycle).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from jointnas.spaces.nets.blocks import ZERO, ConvBNAct, Cost, Head, InvertedResidual, out_size
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


def stage_costs(arch: Arch, *, num_classes: int, in_channels: int) -> list[tuple[str, int, Cost]]:
    """(part, output size, cost) for the stem, each stage and the head: the rows of
    ``jointnas describe`` and, summed, ``arch_cost``."""
    size = arch.resolution
    stem = ConvBNAct.cost(in_channels, arch.stem_width, 3, arch.stem_stride, size)
    size = out_size(size, arch.stem_stride)
    rows = [("stem", size, stem)]
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
        rows.append((f"s{i}", size, total))
    rows.append(("head", 1, Head.cost(cin, arch.head_width, num_classes, size)))
    return rows


def arch_cost(arch: Arch, *, num_classes: int, in_channels: int) -> Cost:
    total = ZERO
    for _, _, c in stage_costs(arch, num_classes=num_classes, in_channels=in_channels):
        total = total + c
    return Cost(int(total.flops), int(total.params), int(total.acts))


def batch_cost(space: Any, X: np.ndarray, *, num_classes: int, in_channels: int) -> Cost:
    """Vectorised twin of ``arch_cost`` for an encoded population ``X`` (rows of
    ``space.encode`` of an ``FBNetV3Space``, whose preset gives the fixed structure): a Cost
    of int64 arrays, one entry per row, without a Python row loop."""
    cols: dict[str, Any] = dict(space.encoder.columns(X))
    n = len(X)
    for name, dist in space.distributions.items():
        if name.endswith("_kernel"):  # category index -> kernel size
            cols[name] = np.asarray(dist.choices, dtype=np.int64)[cols[name]]  # type: ignore
    full = {
        **{
            k: np.full(n, v, dtype=np.int64)
            for k, v in space.fixed.items()
            if isinstance(v, int) and not isinstance(v, bool)
        },
        **cols,
    }
    pre = space.preset
    size = full["resolution"].astype(np.int64)
    total = ConvBNAct.cost(in_channels, full["stem_width"], 3, pre.stem_stride, size)
    size = out_size(size, pre.stem_stride)
    cin = full["stem_width"]
    for i, spec in enumerate(pre.stages, start=1):
        width, depth = full[f"s{i}_width"], full[f"s{i}_depth"]
        kernel, expansion = full[f"s{i}_kernel"], full[f"s{i}_expansion"]
        for j in range(spec.depth[1]):
            stride = spec.stride if j == 0 else 1
            block = InvertedResidual.cost(
                cin, width, kernel=kernel, stride=stride, expansion=expansion, se=spec.se, size=size
            )
            total = total + (block if j == 0 else block.masked(depth > j))
            size = out_size(size, stride)  # stride > 1 only on the always-present first block
            cin = width
    total = ZERO + total + Head.cost(cin, pre.head_width, num_classes, size)
    return Cost(*(np.asarray(v, dtype=np.int64) for v in (total.flops, total.params, total.acts)))
