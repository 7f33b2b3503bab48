"""AnyNet's network (pycls ``anynet.py``): X/Y bottleneck blocks, builder and exact cost twins.

The network is stem (3x3 conv, BN, ReLU) -> stages of residual bottleneck blocks -> head
(global average pool, fc). The X block is 1x1 -> 3x3 group conv (carrying the stride) -> 1x1,
each with BN, ReLU after the first two and after the residual add; a 1x1 conv + BN projects the
shortcut when the shape changes. The Y block adds the shared ``blocks.SqueezeExcite`` after the
3x3 (ReLU, sigmoid gate), its squeeze width a quarter of the *block input* width, as pycls does
(not the 3x3's width, not rounded to 8 as MobileNet's). The head is ``blocks.Head`` without its
1x1 conv: pool, dropout, fc.

Both the AnyNet and the RegNet spaces decode into architectures with the same fields
(``resolution``, ``stem_width``, ``stem_stride``, ``stages``, ``se_ratio``), so one builder and one
cost serve both. ``Bottleneck.cost`` takes ints or integer numpy arrays, so ``batch_cost`` walks a
whole encoded population with the formulas that ``arch_cost`` uses for one network; both equal
fvcore's count of the built model (the space contract suite). This module imports no space
module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from jointnas.spaces.nets.blocks import (
    ZERO,
    ConvBNAct,
    Cost,
    DropPath,
    Head,
    Int,
    Part,
    SqueezeExcite,
    out_size,
    total_cost,
)
from jointnas.spaces.nets.model import check_task, init_weights, seeded


@dataclass(frozen=True)
class Stage:
    """One built stage: ``depth`` blocks of output ``width``; the first carries ``stride``."""

    depth: int
    width: int
    stride: int
    bot_mul: float
    group_w: int


@dataclass(frozen=True)
class AnyNetArch:
    """A decoded AnyNet: the per-stage values as searched, and ``stages`` as built (after
    ``adjust_block_compatibility``; derived, so ``dataclasses.replace`` keeps them in step)."""

    resolution: int
    stem_width: int
    stem_stride: int
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    bot_muls: tuple[float, ...]
    group_ws: tuple[int, ...]
    strides: tuple[int, ...]
    se_ratio: float
    layout: str
    stages: tuple[Stage, ...] = field(init=False)

    def __post_init__(self) -> None:
        ws, bs, gs = adjust_block_compatibility(self.widths, self.bot_muls, self.group_ws)
        stages = tuple(
            Stage(int(d), int(w), int(s), float(b), int(g))
            for d, w, s, b, g in zip(self.depths, ws, self.strides, bs, gs, strict=True)
        )
        object.__setattr__(self, "stages", stages)


class Body(Protocol):
    """What the builder and the cost read from an AnyNet or RegNet architecture."""

    resolution: int
    stem_width: int
    stem_stride: int
    stages: tuple[Stage, ...]
    se_ratio: float


def adjust_block_compatibility(ws: Any, bs: Any, gs: Any) -> tuple[Any, Any, Any]:
    """pycls's rule that makes widths, bottleneck multipliers and group widths fit together:
    the bottleneck width w*b is at least 1, the group width at most the bottleneck width, the
    bottleneck width rounded to a multiple of the group width (of lcm(g, b) for an integer b > 1),
    and the width recovered as bottleneck / b. Rounding is half-to-even, as Python's ``round`` in
    the reference. Takes sequences or arrays (any shape, one entry per stage); returns arrays."""
    ws, bs, gs = (np.asarray(v) for v in (ws, bs, gs))
    if np.any(ws <= 0) or np.any(bs <= 0) or np.any(gs <= 0):
        raise ValueError("widths, bottleneck multipliers and group widths must be > 0")
    if np.any((bs > 1) & (bs % 1 != 0)):
        raise ValueError("a bottleneck multiplier above 1 must be an integer")
    vs = np.floor(np.maximum(1, ws * bs)).astype(np.int64)
    gs = np.minimum(gs, vs).astype(np.int64)
    ms = np.where(bs > 1, np.lcm(gs, np.maximum(bs, 1).astype(np.int64)), gs)
    vs = np.maximum(ms, np.round(vs / ms).astype(np.int64) * ms)
    ws = np.floor(vs / bs).astype(np.int64)
    return ws, bs, gs


def stage_strides(strides: Sequence[int], count: int) -> tuple[int, ...]:
    """Stride of each of ``count`` stages: ``strides`` in order, its last entry repeated for any
    further stage (RegNet decides its stage count from its widths)."""
    return tuple(strides[min(i, len(strides) - 1)] for i in range(count))


def _bottleneck_width(w_out: Int, bot_mul: Any) -> Int:
    return np.round(w_out * bot_mul).astype(np.int64)


def _se_width(w_in: Int, se_ratio: float) -> Int:
    return np.round(w_in * se_ratio).astype(np.int64)


class Bottleneck(nn.Module):
    """Residual bottleneck block (X; Y with ``se_ratio`` > 0), drop path on the residual branch."""

    def __init__(
        self,
        w_in: int,
        w_out: int,
        *,
        stride: int,
        bot_mul: float,
        group_w: int,
        se_ratio: float,
        depth_scale: float = 0.0,
    ) -> None:
        super().__init__()
        w_b = int(_bottleneck_width(w_out, bot_mul))
        self.a = ConvBNAct(w_in, w_b, 1, act="relu")
        self.b = ConvBNAct(w_b, w_b, 3, stride, groups=w_b // group_w, act="relu")
        squeezed = int(_se_width(w_in, se_ratio))
        self.se = SqueezeExcite(w_b, squeezed) if se_ratio else nn.Identity()
        self.c = ConvBNAct(w_b, w_out, 1, act=None)
        project = w_in != w_out or stride != 1
        self.proj = ConvBNAct(w_in, w_out, 1, stride, act=None) if project else nn.Identity()
        self.drop_path = DropPath(depth_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c(self.se(self.b(self.a(x))))
        return F.relu(self.proj(x) + self.drop_path(y))

    @staticmethod
    def cost(
        w_in: Int,
        w_out: Int,
        *,
        stride: Int,
        bot_mul: Any,
        group_w: Int,
        se_ratio: float,
        size: Int,
    ) -> Cost:
        w_b = _bottleneck_width(w_out, bot_mul)
        out = out_size(size, stride)
        total = ConvBNAct.cost(w_in, w_b, 1, 1, size)
        total = total + ConvBNAct.cost(w_b, w_b, 3, stride, size, groups=w_b // group_w)
        if se_ratio:
            total = total + SqueezeExcite.cost(w_b, _se_width(w_in, se_ratio), out)
        total = total + ConvBNAct.cost(w_b, w_out, 1, 1, out)
        project = (w_in != w_out) | (stride != 1)
        return total + ConvBNAct.cost(w_in, w_out, 1, stride, size).masked(project)


class AnyNet(nn.Module):
    """Stem, one ``nn.Sequential`` of blocks per stage (``s1``, ``s2``, ...), head."""

    def __init__(self, arch: Body, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.stem = ConvBNAct(in_channels, arch.stem_width, 3, arch.stem_stride, act="relu")
        total = sum(st.depth for st in arch.stages)
        w_in, index = arch.stem_width, 0
        for i, st in enumerate(arch.stages, start=1):
            blocks = []
            for j in range(st.depth):
                blocks.append(
                    Bottleneck(
                        w_in,
                        st.width,
                        stride=st.stride if j == 0 else 1,
                        bot_mul=st.bot_mul,
                        group_w=st.group_w,
                        se_ratio=arch.se_ratio,
                        depth_scale=index / max(total - 1, 1),
                    )
                )
                w_in, index = st.width, index + 1
            self.add_module(f"s{i}", nn.Sequential(*blocks))
        self.head = Head(w_in, None, num_classes)
        init_weights(self)
        for m in self.modules():  # identity blocks start as the identity (see below)
            if isinstance(m, Bottleneck) and isinstance(m.proj, nn.Identity):
                nn.init.zeros_(m.c[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.children():
            x = module(x)
        return x


def build(arch: Body, num_classes: int, in_channels: int, *, seed: int | None = None) -> nn.Module:
    """The network of ``arch``, weights drawn from ``seed`` when given."""
    check_task(num_classes, in_channels)
    return seeded(seed, lambda: AnyNet(arch, num_classes, in_channels))


def part_costs(arch: Body, *, num_classes: int, in_channels: int) -> list[Part]:
    """The stem, each stage and the head: ``jointnas describe``'s rows and, summed,
    ``arch_cost``."""
    stem = ConvBNAct.cost(in_channels, arch.stem_width, 3, arch.stem_stride, arch.resolution)
    size = out_size(arch.resolution, arch.stem_stride)
    parts = [Part("stem", arch.stem_width, size, stem)]
    w_in = arch.stem_width
    for i, st in enumerate(arch.stages, start=1):
        total = ZERO
        for j in range(st.depth):
            stride = st.stride if j == 0 else 1
            total = total + Bottleneck.cost(
                w_in,
                st.width,
                stride=stride,
                bot_mul=st.bot_mul,
                group_w=st.group_w,
                se_ratio=arch.se_ratio,
                size=size,
            )
            size, w_in = out_size(size, stride), st.width
        parts.append(Part(f"s{i}", st.width, size, total))
    return [*parts, Part("head", num_classes, 1, Head.cost(w_in, None, num_classes, size))]


def arch_cost(arch: Body, *, num_classes: int, in_channels: int) -> Cost:
    """Exact fvcore flops / numel params / fvcore activations of ``build(arch, ...)``."""
    return total_cost(part_costs(arch, num_classes=num_classes, in_channels=in_channels))


def batch_cost(
    *,
    resolution: int,
    stem_width: int,
    stem_stride: int,
    strides: Sequence[int],
    depths: np.ndarray,
    widths: np.ndarray,
    bot_muls: np.ndarray,
    group_ws: np.ndarray,
    se_ratio: float,
    num_classes: int,
    in_channels: int,
) -> Cost:
    """Vectorised ``arch_cost`` of n networks with the same fixed stage count: ``depths``,
    ``widths``, ``bot_muls``, ``group_ws`` are (n, stages) arrays of the *requested* values,
    adjusted here by ``adjust_block_compatibility`` as decoding does; blocks past a network's
    depth are masked out. Returns a Cost of int64 arrays."""
    depths = np.asarray(depths, dtype=np.int64)
    widths, bot_muls, group_ws = adjust_block_compatibility(widths, bot_muls, group_ws)
    n = depths.shape[0]
    size = resolution
    total = ConvBNAct.cost(in_channels, stem_width, 3, stem_stride, size)
    total = Cost(*(np.full(n, v, dtype=np.int64) for v in (total.flops, total.params, total.acts)))
    size = out_size(size, stem_stride)
    w_in: Any = np.full(n, stem_width, dtype=np.int64)
    for s, stride in enumerate(strides):
        width, bot_mul, group_w = widths[:, s], bot_muls[:, s], group_ws[:, s]
        for j in range(int(depths[:, s].max())):
            block = Bottleneck.cost(
                w_in,
                width,
                stride=stride if j == 0 else 1,
                bot_mul=bot_mul,
                group_w=group_w,
                se_ratio=se_ratio,
                size=size,
            )
            total = total + (block if j == 0 else block.masked(depths[:, s] > j))
            if j == 0:  # every stage has its first block, the one with the stride
                size, w_in = out_size(size, stride), width
    total = total + Head.cost(w_in, None, num_classes, size)
    return Cost(*(np.asarray(v, dtype=np.int64) for v in (total.flops, total.params, total.acts)))
