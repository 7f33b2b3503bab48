"""AnyNetX design spaces A..E ("Designing Network Design Spaces", Radosavovic et al. 2020).

AnyNet is stem -> stages -> head, each stage free in depth d_i, width w_i, bottleneck
multiplier b_i (pycls's ``bot_mul``: bottleneck width = w_i * b_i, i.e. the paper's ratio is
1 / b_i) and group width g_i; widths, multipliers and group widths are made compatible by pycls's
``adjust_block_compatibility`` while decoding. The paper narrows AnyNetX-A step by step:

* B shares one b across stages, C also one g (each a single distribution);
* D adds w_{i+1} >= w_i and E also d_{i+1} >= d_i. So that every sample satisfies them by
  construction (a space stays a fixed mapping name -> distribution, and a sampler never draws a
  candidate outside it), a monotone quantity is parametrised as the first stage's value plus
  non-negative increments (``s2_width_inc``, ...), and decoding sums them. The increment ranges
  keep every stage inside A's box (the largest reachable width is A's largest), so D and E are
  subsets of C; they do not reach every monotone member of C (s1_width <= half of A's range).

Two layouts: ``small`` (default: 28 px input, stem stride 1, 3 stages, widths <= 128) so a
candidate trains in seconds on a CPU, for the EDF and JointNAS runs here; ``imagenet`` (224 px,
stem 3x3 s2 of width 32, 4 stages, d_i <= 16, w_i <= 1024) is the paper's box. The training recipe
is searched jointly, on the axes every joint space shares (``recipe_axes``).

The frame, recipe, pinning and structure keys are ``staged.StagedSpace``'s, shared with RegNet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution

from jointnas.spaces.nets.anynet import AnyNetArch, arch_cost, batch_cost, build
from jointnas.spaces.nets.blocks import Cost
from jointnas.spaces.nets.network import Network
from jointnas.spaces.registry import register
from jointnas.spaces.staged import Layout, StagedSpace


@dataclass(frozen=True, kw_only=True)
class AnyNetLayout(Layout):
    """AnyNet's ranges (inclusive; widths in steps of 8): per stage, and for D/E the first
    stage's value and the non-negative increments of the later ones."""

    depth: tuple[int, int]
    width: tuple[int, int]
    first_depth: tuple[int, int]
    depth_inc: tuple[int, int]
    first_width: tuple[int, int]
    width_inc: tuple[int, int]


_B = (0.25, 0.5, 1.0)
_G = (1, 2, 4, 8, 16, 32)
LAYOUTS: dict[str, AnyNetLayout] = {
    "small": AnyNetLayout(
        name="small",
        resolution=28,
        stem_width=16,
        stem_stride=1,
        strides=(2, 2, 2),
        bot_muls=_B,
        group_ws=_G,
        depth=(1, 4),
        width=(8, 128),
        first_depth=(1, 2),
        depth_inc=(0, 1),
        first_width=(8, 64),
        width_inc=(0, 32),
        notes="28 px, stem stride 1, 3 stages, d <= 4, w <= 128",
    ),
    "imagenet": AnyNetLayout(
        name="imagenet",
        resolution=224,
        stem_width=32,
        stem_stride=2,
        strides=(2, 2, 2, 2),
        bot_muls=_B,
        group_ws=_G,
        task=(1000, 3),
        depth=(1, 16),
        width=(8, 1024),
        first_depth=(1, 4),
        depth_inc=(0, 4),
        first_width=(8, 256),
        width_inc=(0, 256),
        notes="the paper's box: 224 px, 4 stages, d <= 16, w <= 1024",
    ),
}


@dataclass(frozen=True)
class Design:
    """Which of the paper's constraints an AnyNetX space applies."""

    shared_bot_mul: bool
    shared_group_w: bool
    monotone_width: bool
    monotone_depth: bool
    notes: str


DESIGNS: dict[str, Design] = {
    "a": Design(False, False, False, False, "free d, w, b, g per stage"),
    "b": Design(True, False, False, False, "A with one bottleneck multiplier for all stages"),
    "c": Design(True, True, False, False, "B with one group width for all stages"),
    "d": Design(True, True, True, False, "C with non-decreasing widths"),
    "e": Design(True, True, True, True, "D with non-decreasing depths"),
}


def _int(low: int, high: int, step: int = 1) -> IntDistribution:
    return IntDistribution(low, high, step=step)


class AnyNetSpace(StagedSpace):
    """AnyNetX-A..E (``design``), jointly with the training recipe."""

    layouts = LAYOUTS
    network = Network(AnyNetArch, build, arch_cost)

    def __init__(
        self,
        *,
        design: str = "a",
        layout: str = "small",
        se: bool = False,
        fix: Mapping[str, Any] | None = None,
    ) -> None:
        if design not in DESIGNS:
            raise ValueError(f"unknown design {design!r}; choose one of {sorted(DESIGNS)}")
        self.design = DESIGNS[design]
        self.design_name = design
        suffix = "" if layout == "small" else f"-{layout}"
        self.name = f"anynet{'y' if se else 'x'}-{design}{suffix}"
        super().__init__(layout=layout, se=se, fix=fix)

    def _arch_spec(self) -> dict[str, BaseDistribution]:
        lay, des = self.layout, self.design
        spec: dict[str, BaseDistribution] = {}
        if des.shared_bot_mul:
            spec["bot_mul"] = CategoricalDistribution(lay.bot_muls)
        if des.shared_group_w:
            spec["group_w"] = CategoricalDistribution(lay.group_ws)
        for i in range(1, len(lay.strides) + 1):
            if not des.monotone_depth:
                spec[f"s{i}_depth"] = _int(*lay.depth)
            elif i == 1:
                spec["s1_depth"] = _int(*lay.first_depth)
            else:
                spec[f"s{i}_depth_inc"] = _int(*lay.depth_inc)
            if not des.monotone_width:
                spec[f"s{i}_width"] = _int(*lay.width, 8)
            elif i == 1:
                spec["s1_width"] = _int(*lay.first_width, 8)
            else:
                spec[f"s{i}_width_inc"] = _int(*lay.width_inc, 8)
            if not des.shared_bot_mul:
                spec[f"s{i}_bot_mul"] = CategoricalDistribution(lay.bot_muls)
            if not des.shared_group_w:
                spec[f"s{i}_group_w"] = CategoricalDistribution(lay.group_ws)
        return spec

    def _stage_values(self, get: Callable[[str], Any]) -> tuple[list[Any], ...]:
        """Per-stage (depths, widths, bot_muls, group_ws) from parameter values (scalars or
        columns): increments summed, shared values repeated."""
        des = self.design
        depths: list[Any] = []
        widths: list[Any] = []
        bot_muls: list[Any] = []
        group_ws: list[Any] = []
        for i in range(1, len(self.layout.strides) + 1):
            mono_d, mono_w = des.monotone_depth and i > 1, des.monotone_width and i > 1
            depths.append(depths[-1] + get(f"s{i}_depth_inc") if mono_d else get(f"s{i}_depth"))
            widths.append(widths[-1] + get(f"s{i}_width_inc") if mono_w else get(f"s{i}_width"))
            bot_muls.append(get("bot_mul" if des.shared_bot_mul else f"s{i}_bot_mul"))
            group_ws.append(get("group_w" if des.shared_group_w else f"s{i}_group_w"))
        return depths, widths, bot_muls, group_ws

    def _make_arch(self, p: Mapping[str, Any]) -> AnyNetArch:
        depths, widths, bot_muls, group_ws = self._stage_values(p.__getitem__)
        lay = self.layout
        return AnyNetArch(
            resolution=lay.resolution,
            stem_width=lay.stem_width,
            stem_stride=lay.stem_stride,
            depths=tuple(depths),
            widths=tuple(widths),
            bot_muls=tuple(bot_muls),
            group_ws=tuple(group_ws),
            strides=lay.strides,
            se_ratio=self.se_ratio,
            layout=lay.name,
        )

    def _arch_values(self, arch: AnyNetArch) -> dict[str, Any]:
        des, out = self.design, {}
        if len(arch.depths) != len(self.layout.strides):
            raise ValueError(f"{self.name} has {len(self.layout.strides)} stages, not this arch's")
        for key, values, shared in (
            ("bot_mul", arch.bot_muls, des.shared_bot_mul),
            ("group_w", arch.group_ws, des.shared_group_w),
        ):
            if shared and len(set(values)) > 1:
                raise ValueError(f"{self.name} shares one {key} across stages, not {values}")
        for i in range(1, len(arch.depths) + 1):
            d, w = arch.depths[i - 1], arch.widths[i - 1]
            if des.monotone_depth and i > 1:
                out[f"s{i}_depth_inc"] = d - arch.depths[i - 2]
            else:
                out[f"s{i}_depth"] = d
            if des.monotone_width and i > 1:
                out[f"s{i}_width_inc"] = w - arch.widths[i - 2]
            else:
                out[f"s{i}_width"] = w
            out["bot_mul" if des.shared_bot_mul else f"s{i}_bot_mul"] = arch.bot_muls[i - 1]
            out["group_w" if des.shared_group_w else f"s{i}_group_w"] = arch.group_ws[i - 1]
        return out

    def _sibling(self, *, layout: str, se: bool) -> AnyNetSpace:
        return AnyNetSpace(design=self.design_name, layout=layout, se=se)

    def structure(self) -> dict[str, Any]:
        return {**super().structure(), "design": asdict(self.design)}

    def cost_batch(self, X: Any, *, num_classes: int, in_channels: int) -> Cost:
        """Vectorised twin: the stage count is fixed, so blocks past a depth are masked."""
        cols = self.value_columns(X)
        d, w, b, g = (np.stack(v, axis=1) for v in self._stage_values(cols.__getitem__))
        lay = self.layout
        return batch_cost(
            resolution=lay.resolution,
            stem_width=lay.stem_width,
            stem_stride=lay.stem_stride,
            strides=lay.strides,
            depths=d,
            widths=w,
            bot_muls=b.astype(float),
            group_ws=g.astype(np.int64),
            se_ratio=self.se_ratio,
            num_classes=num_classes,
            in_channels=in_channels,
        )


def _factory(design: str) -> Callable[..., AnyNetSpace]:
    def make(
        *, layout: str = "small", se: bool = False, fix: Mapping[str, Any] | None = None
    ) -> AnyNetSpace:
        return AnyNetSpace(design=design, layout=layout, se=se, fix=fix)

    make.__doc__ = f"AnyNetX-{design.upper()}: {DESIGNS[design].notes}"
    return make


for _design, _spec in DESIGNS.items():
    register(
        f"anynetx-{_design}",
        _factory(_design),
        summary=f"AnyNetX-{_design.upper()}: {_spec.notes} ({LAYOUTS['small'].notes})",
    )
