"""AnyNet's network (pycls ``anynet.py``): X/Y bottleneck blocks, builder and exact cost twins.

The network is stem (3x3 conv, BN, ReLU) -> stages of residual bottleneck blocks -> head
(global average pool, fc). The X block is 1x1 -> 3x3 group conv (carrying the stride) -> 1x1,
each with BN, ReLU after the first two and after the residual add; a 1x1 conv + BN projects the
shortcut when the shape changes. The Y block adds squeeze-excite after the 3x3, its squeeze
width a quarter of the *block input* width, as pycls does (not the 3x3's width, not rounded to 8,
so ``jointnas.spaces.nets.blocks.SqueezeExcite`` does not fit: it is the MobileNet variant).

Both the AnyNet and the RegNet spaces decode into architectures with the same fields
(``resolution``, ``stem_width``, ``stem_stride``, ``stages``, ``se_ratio``), so one builder and one
cost serve both. ``Bottleneck.cost`` takes ints or integer numpy arrays, so ``batch_cost`` walks a
whole encoded population with the formulas that ``net_cost`` uses for one network; both equal
fvcore's count of the built model (tests). This module imports no space module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from jointnas.spaces.nets.blocks import ZERO, ConvBNAct, Cost, DropPath, Int, out_size
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


class SE(nn.Module):
    """Squeeze-excite of pycls: average pool, 1x1 conv + ReLU, 1x1 conv + sigmoid, rescale."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.expand = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.expand(F.relu(self.reduce(s))))

    @staticmethod
    def cost(channels: Int, squeeze: Int, size: Int) -> Cost:
        """fvcore: the pool reads every input element once; the 1x1 convs' biases are free."""
        return Cost(
            flops=size * size * channels + 2 * channels * squeeze,
            params=2 * channels * squeeze + squeeze + channels,
            acts=squeeze + channels,
        )


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
        self.se = SE(w_b, int(_se_width(w_in, se_ratio))) if se_ratio else nn.Identity()
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
            total = total + SE.cost(w_b, _se_width(w_in, se_ratio), out)
        total = total + ConvBNAct.cost(w_b, w_out, 1, 1, out)
        project = (w_in != w_out) | (stride != 1)
        return total + ConvBNAct.cost(w_in, w_out, 1, stride, size).masked(project)


class AnyHead(nn.Module):
    """pycls's head: global average pool, (recipe) dropout, fc."""

    def __init__(self, w_in: int, num_classes: int) -> None:
        super().__init__()
        self.dropout = nn.Dropout(0.0)
        self.fc = nn.Linear(w_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(F.adaptive_avg_pool2d(x, 1).flatten(1)))

    @staticmethod
    def cost(w_in: Int, num_classes: int, size: Int) -> Cost:
        fc = w_in * num_classes
        return Cost(flops=size * size * w_in + fc, params=fc + num_classes, acts=num_classes)


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
        self.head = AnyHead(w_in, num_classes)
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


def stage_costs(arch: Body, *, num_classes: int, in_channels: int) -> list[tuple[str, int, Cost]]:
    """(part, output size, cost) of the stem, each stage and the head: ``jointnas describe``'s
    rows and, summed, ``net_cost``."""
    stem = ConvBNAct.cost(in_channels, arch.stem_width, 3, arch.stem_stride, arch.resolution)
    size = out_size(arch.resolution, arch.stem_stride)
    rows = [("stem", size, stem)]
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
        rows.append((f"s{i}", size, total))
    rows.append(("head", 1, AnyHead.cost(w_in, num_classes, size)))
    return rows


def net_cost(arch: Body, *, num_classes: int, in_channels: int) -> Cost:
    """Exact fvcore flops / numel params / fvcore activations of ``build(arch, ...)``."""
    total = ZERO
    for _, _, c in stage_costs(arch, num_classes=num_classes, in_channels=in_channels):
        total = total + c
    return Cost(int(total.flops), int(total.params), int(total.acts))


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
    """Vectorised ``net_cost`` of n networks with the same fixed stage count: ``depths``,
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
    total = total + AnyHead.cost(w_in, num_classes, size)
    return Cost(*(np.asarray(v, dtype=np.int64) for v in (total.flops, total.params, total.acts)))
