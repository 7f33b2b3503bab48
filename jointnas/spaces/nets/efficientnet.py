"""EfficientNet's architecture, network and exact analytic cost: the builder and the cost twins.

An ``EfficientNetArch`` is the B0 block table plus the two compound-scaling multipliers and the
input resolution, as timm decodes it: widths come from ``round_filters`` and depths from
``round_repeats`` *while building*, so scaling a network is replacing three numbers
(``designs.scaling``) and every scaled network is still an ``EfficientNetArch`` that builds and
costs exactly, inside a search range or not.

The network is stem (3x3 conv) -> MBConv blocks -> head (1x1 conv, pool, dropout, fc), swish
throughout. MBConv is ``blocks.InvertedResidual`` with EfficientNet's settings of the shared
``blocks.SqueezeExcite``: squeezed to a quarter of the block's *input* channels (not the
expanded ones), swish inside, sigmoid gate. Stochastic depth grows with the block index
(rate * idx / total, timm's rule). ``part_costs`` / ``arch_cost`` walk the same blocks with
plain ints, ``batch_cost`` walks them once for a whole population with numpy arrays; both equal
fvcore's count of the built model (the space contract suite). This module imports no space
module (no cycle).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
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
    SqueezeExcite,
    out_size,
    total_cost,
)
from jointnas.spaces.nets.model import check_task, init_weights, seeded

Int = Any  # an int, or an integer numpy array of per-candidate values
#: squeeze-excite width as a fraction of the block's input channels (B0's se0.25)
SE_RATIO = 0.25


def round_filters(
    filters: int, width_mult: float, divisor: int = 8, min_depth: int | None = None
) -> int:
    """Channels after width scaling, the reference rule (TF ``round_filters``, timm
    ``round_channels``): the nearest multiple of ``divisor``, at least ``min_depth`` (default
    ``divisor``), never more than 10% below ``filters * width_mult``."""
    if not width_mult:
        return filters
    scaled = filters * width_mult
    floor = min_depth or divisor
    new = max(floor, int(scaled + divisor / 2) // divisor * divisor)
    if new < 0.9 * scaled:
        new += divisor
    return int(new)


def round_repeats(repeats: int, depth_mult: float) -> int:
    """Blocks of a stage after depth scaling: ceil(depth_mult * repeats), the reference rule
    (so any multiplier above 1 deepens every stage)."""
    if not depth_mult:
        return repeats
    return math.ceil(depth_mult * repeats)


def se_reduced(cin: Int) -> Int:
    """Squeeze width: max(1, int(cin * 0.25)) of the block input, as the TF reference; timm's
    round(mid * 0.25 / expansion) is the same number whenever cin is a multiple of 4, which
    every divisor >= 4 guarantees."""
    reduced = cin // 4
    return reduced + (reduced < 1)


@dataclass(frozen=True)
class StageDef:
    """One row of the block table, before scaling: base channels and repeats."""

    kernel: int
    expansion: int
    channels: int
    repeats: int
    stride: int


@dataclass(frozen=True)
class EfficientNetArch:
    """A decoded architecture: the block table, the multipliers, the resolution, and the fixed
    facts (stem stride, base stem/head channels, divisor, activation)."""

    resolution: int
    width_mult: float
    depth_mult: float
    stages: tuple[StageDef, ...]
    stem_stride: int = 2
    stem_channels: int = 32
    head_channels: int = 1280
    divisor: int = 8
    act: str = "swish"

    def width(self, channels: int) -> int:
        return round_filters(channels, self.width_mult, self.divisor)

    @property
    def stem_width(self) -> int:
        return self.width(self.stem_channels)

    @property
    def head_width(self) -> int:
        return self.width(self.head_channels)

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(self.width(st.channels) for st in self.stages)

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(round_repeats(st.repeats, self.depth_mult) for st in self.stages)

    def blocks(self) -> Iterator[tuple[int, int, int, int, int, int]]:
        """(stage index, cin, cout, kernel, stride, expansion) of every block, in order: the
        one walk the builder and the scalar cost share."""
        cin = self.stem_width
        rows = zip(self.stages, self.widths, self.depths, strict=True)
        for i, (st, cout, depth) in enumerate(rows):
            for j in range(depth):
                yield i, cin, cout, st.kernel, st.stride if j == 0 else 1, st.expansion
                cin = cout


class MBConv(InvertedResidual):
    """B0's block: ``InvertedResidual`` (expand, depthwise, project, identity shortcut with drop
    path; no expand conv at expansion 1, B0's first, depthwise-separable stage) with
    EfficientNet's squeeze-excite (see the module docstring). Reusing the shared block keeps
    the trainer's drop-path rates and the zero-init of residual branches
    (``model.init_weights``) in force."""

    def __init__(
        self,
        cin: int,
        cout: int,
        *,
        kernel: int,
        stride: int,
        expansion: int,
        act: str,
        depth_scale: float = 0.0,
    ) -> None:
        super().__init__(
            cin,
            cout,
            kernel=kernel,
            stride=stride,
            expansion=expansion,
            se=False,
            act=act,
            depth_scale=depth_scale,
        )
        self.se = SqueezeExcite(cin * expansion, se_reduced(cin), act=act)

    @staticmethod
    def cost(  # type: ignore[override]
        cin: Int, cout: Int, *, kernel: Int, stride: int, expansion: Int, size: Int
    ) -> Cost:
        body = InvertedResidual.cost(
            cin, cout, kernel=kernel, stride=stride, expansion=expansion, se=False, size=size
        )
        return body + SqueezeExcite.cost(cin * expansion, se_reduced(cin), out_size(size, stride))


class EfficientNet(nn.Module):
    """Stem conv, MBConv blocks (drop-path rate growing with the block index), head."""

    def __init__(self, arch: EfficientNetArch, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.arch = arch
        self.stem = ConvBNAct(in_channels, arch.stem_width, 3, arch.stem_stride, act=arch.act)
        specs = list(arch.blocks())
        self.blocks = nn.Sequential(
            *(
                MBConv(
                    cin,
                    cout,
                    kernel=kernel,
                    stride=stride,
                    expansion=expansion,
                    act=arch.act,
                    depth_scale=idx / len(specs),
                )
                for idx, (_, cin, cout, kernel, stride, expansion) in enumerate(specs)
            )
        )
        self.head = Head(arch.widths[-1], arch.head_width, num_classes, arch.act)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def build(
    arch: EfficientNetArch, num_classes: int, in_channels: int, *, seed: int | None = None
) -> nn.Module:
    """The network of ``arch``, weights drawn from ``seed`` when given."""
    check_task(num_classes, in_channels)
    return seeded(seed, lambda: EfficientNet(arch, num_classes, in_channels))


def part_costs(arch: EfficientNetArch, *, num_classes: int, in_channels: int) -> list[Part]:
    """The stem, each stage and the head: the rows of ``jointnas describe`` and, summed,
    ``arch_cost``."""
    stem = ConvBNAct.cost(in_channels, arch.stem_width, 3, arch.stem_stride, arch.resolution)
    size = out_size(arch.resolution, arch.stem_stride)
    parts = [Part("stem", arch.stem_width, size, stem)]
    per_stage = [ZERO] * len(arch.stages)
    sizes = [size] * len(arch.stages)
    for i, cin, cout, kernel, stride, expansion in arch.blocks():
        block = MBConv.cost(cin, cout, kernel=kernel, stride=stride, expansion=expansion, size=size)
        per_stage[i] = per_stage[i] + block
        size = sizes[i] = out_size(size, stride)
    parts += [
        Part(f"s{i}", width, sizes[i - 1], c)
        for i, (width, c) in enumerate(zip(arch.widths, per_stage, strict=True), start=1)
    ]
    head = Head.cost(arch.widths[-1], arch.head_width, num_classes, size)
    return [*parts, Part("head", num_classes, 1, head)]


def arch_cost(arch: EfficientNetArch, *, num_classes: int, in_channels: int) -> Cost:
    """Exact cost of ``build(arch, ...)``: fvcore's flops and activations, ``numel`` params."""
    return total_cost(part_costs(arch, num_classes=num_classes, in_channels=in_channels))


def _per_value(values: np.ndarray, fn: Callable[[float], int]) -> np.ndarray:
    """``fn`` of each row's multiplier, computed once per distinct value: the multipliers sit
    on a grid of a few dozen values, and the rounding rules stay the scalar Python ones (a
    float32/round-trip difference can flip a tie in ``round_filters``)."""
    uniq, inverse = np.unique(values, return_inverse=True)
    return np.asarray([fn(round(float(u), 6)) for u in uniq], dtype=np.int64)[inverse]


def batch_cost(
    columns: dict[str, np.ndarray], base: EfficientNetArch, *, num_classes: int, in_channels: int
) -> Cost:
    """Vectorised twin of ``arch_cost`` for a population: ``columns`` holds per-row arrays of
    ``resolution``, ``width_mult``, ``depth_mult`` and ``s{i}_kernel`` / ``s{i}_expansion``
    values; everything else (strides, base table, divisor) comes from ``base``. Blocks that a
    row's depth leaves out are masked, as in the FBNetV3 twin."""
    size = np.asarray(columns["resolution"], dtype=np.int64)
    w, d = columns["width_mult"], columns["depth_mult"]
    div = base.divisor
    stem = _per_value(w, lambda m: round_filters(base.stem_channels, m, div))
    total = ConvBNAct.cost(in_channels, stem, 3, base.stem_stride, size)
    size = out_size(size, base.stem_stride)
    cin = stem
    for i, st in enumerate(base.stages, start=1):
        width = _per_value(w, lambda m, c=st.channels: round_filters(c, m, div))
        depth = _per_value(d, lambda m, r=st.repeats: round_repeats(r, m))
        kernel, expansion = columns[f"s{i}_kernel"], columns[f"s{i}_expansion"]
        for j in range(int(depth.max())):
            stride = st.stride if j == 0 else 1
            block = MBConv.cost(
                cin, width, kernel=kernel, stride=stride, expansion=expansion, size=size
            )
            total = total + (block if j == 0 else block.masked(depth > j))
            size = out_size(size, stride)  # stride > 1 only on the always-present first block
            cin = width
    head = _per_value(w, lambda m: round_filters(base.head_channels, m, div))
    total = total + Head.cost(cin, head, num_classes, size)
    return Cost(*(np.asarray(v, dtype=np.int64) for v in (total.flops, total.params, total.acts)))
