"""The RegNet design space (Radosavovic et al. 2020): six numbers generate a whole AnyNet.

A RegNet is searched as (d, w0, wa, wm, g, b): ``generate_regnet`` lays d block widths on the line
w0 + wa * j, quantises each to w0 * wm^k (k rounded from the line), then to a multiple of q = 8;
runs of equal width become the stages. b (pycls's bottleneck multiplier) and g are shared by all
stages and made compatible with the widths by ``adjust_block_compatibility``; widths never
decrease, so a RegNet is an AnyNetX-D member (its depths may decrease, so not always an E one),
built by the same blocks and costed by the same twins. The X block has no SE;
``se=True`` (the registered ``regnety``) gives the Y block.

Layouts: ``small`` (default; 28 px, stem stride 1, stride 2 on the first three stages and 1 after,
since the stage count follows from the widths) is what runs here search; ``imagenet`` (224 px,
stem 3x3 s2 of width 32, stride 2 per stage, head = pool + fc, as pycls) holds the published
models, which ``named_candidates`` offers as presets with their pycls config values. A preset
carries ``layout`` / ``se`` keys beside the searched ones, so ``jointnas describe --space regnet
--preset RegNetX-200MF --num-classes 1000 --in-channels 3`` describes the published network
while the ``regnet`` space itself searches the small layout. The stage count is free here (pycls's
sweeps reject draws outside a stage-count range; a fixed space cannot), so the cost twin is
the scalar one, row by row.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from jointnas.spaces.encoding import Params
from jointnas.spaces.nets.anynet import (
    Stage,
    adjust_block_compatibility,
    arch_cost,
    build,
    stage_strides,
)
from jointnas.spaces.nets.network import Network
from jointnas.spaces.recipe import Recipe
from jointnas.spaces.registry import register
from jointnas.spaces.staged import Layout, StagedSpace

QUANTUM = 8


def generate_regnet(
    wa: float, w0: int, wm: float, depth: int, q: int = QUANTUM
) -> tuple[list[int], list[int]]:
    """Per-stage (widths, depths) of a RegNet, pycls's ``generate_regnet``: continuous widths
    w0 + wa * j for blocks j < depth, each snapped to w0 * wm^round(log_wm(w_j / w0)) and then
    rounded to a multiple of ``q``; equal consecutive widths form one stage."""
    if not (wa >= 0 and w0 > 0 and wm > 1 and depth >= 1 and w0 % q == 0):
        raise ValueError(
            f"RegNet needs wa >= 0, w0 > 0 a multiple of {q}, wm > 1, depth >= 1; got "
            f"wa={wa}, w0={w0}, wm={wm}, depth={depth}"
        )
    continuous = np.arange(depth) * wa + w0
    steps = np.round(np.log(continuous / w0) / np.log(wm))
    per_block = np.round(np.divide(w0 * np.power(wm, steps), q)).astype(np.int64) * q
    widths, depths = np.unique(per_block, return_counts=True)
    return [int(w) for w in widths], [int(d) for d in depths]


@dataclass(frozen=True, kw_only=True)
class RegNetLayout(Layout):
    """RegNet's ranges (inclusive): depth, w0 (steps of ``QUANTUM``), wa and wm (log scale).
    ``strides`` gives the first stages' strides; any further stage takes the last entry."""

    depth: tuple[int, int]
    w0: tuple[int, int]
    wa: tuple[float, float]
    wm: tuple[float, float]


_B = (0.25, 0.5, 1.0)
LAYOUTS: dict[str, RegNetLayout] = {
    "small": RegNetLayout(
        name="small",
        resolution=28,
        stem_width=16,
        stem_stride=1,
        strides=(2, 2, 2, 1),
        bot_muls=_B,
        group_ws=(1, 2, 4, 8, 16, 24, 32),
        depth=(3, 12),
        w0=(8, 32),
        wa=(4.0, 24.0),
        wm=(1.5, 3.0),
        notes="28 px, stem stride 1, d 3-12, w0 <= 32, wa 4-24",
    ),
    "imagenet": RegNetLayout(
        name="imagenet",
        resolution=224,
        stem_width=32,
        stem_stride=2,
        strides=(2,),
        bot_muls=_B,
        # pycls's sweeps draw powers of two below 8 and multiples of 8 above
        group_ws=(1, 2, 4, *range(8, 257, 8)),
        task=(1000, 3),
        depth=(1, 64),
        w0=(8, 512),
        wa=(1.0, 256.0),
        wm=(1.5, 3.0),
        notes="the paper's box widened to hold every published RegNet: 224 px, d <= 64",
    ),
}


@dataclass(frozen=True)
class RegNetArch:
    """A decoded RegNet: its six numbers, and ``stages`` as generated and made compatible."""

    resolution: int
    stem_width: int
    stem_stride: int
    depth: int
    w0: int
    wa: float
    wm: float
    group_w: int
    bot_mul: float
    strides: tuple[int, ...]
    se_ratio: float
    layout: str
    stages: tuple[Stage, ...] = field(init=False)

    def __post_init__(self) -> None:
        widths, depths = generate_regnet(self.wa, self.w0, self.wm, self.depth)
        n = len(widths)
        ws, bs, gs = adjust_block_compatibility(widths, [self.bot_mul] * n, [self.group_w] * n)
        strides = stage_strides(self.strides, n)
        stages = tuple(
            Stage(d, int(w), s, float(b), int(g))
            for d, w, s, b, g in zip(depths, ws, strides, bs, gs, strict=True)
        )
        object.__setattr__(self, "stages", stages)


@dataclass(frozen=True)
class Published:
    """A published RegNet: its pycls config values (``configs/dds_baselines``) and pycls's count
    of it at 224 px, 1000 classes (``dev/model_complexity.json``). pycls counts no flops for BN
    and pooling but counts conv and fc biases, fvcore the other way round, so the published
    flops sit ~1-2% below fvcore's; params and activations are the same count."""

    depth: int
    w0: int
    wa: float
    wm: float
    group_w: int
    se: bool
    flops: int
    params: int
    acts: int


PUBLISHED: dict[str, Published] = {
    "RegNetX-200MF": Published(13, 24, 36.44, 2.49, 8, False, 199_040_872, 2_684_792, 2_164_056),
    "RegNetX-400MF": Published(22, 24, 24.48, 2.54, 16, False, 397_678_568, 5_157_512, 3_143_272),
    "RegNetX-600MF": Published(16, 48, 36.97, 2.24, 24, False, 600_891_112, 6_196_040, 3_975_096),
    "RegNetY-200MF": Published(13, 24, 36.44, 2.49, 8, True, 199_519_076, 3_162_996, 2_168_052),
    "RegNetY-400MF": Published(16, 48, 27.89, 2.09, 8, True, 401_849_056, 4_344_144, 3_892_496),
}
_ARCH_KEYS = ("depth", "w0", "wa", "wm", "group_w", "bot_mul")


class RegNetSpace(StagedSpace):
    """The RegNet space (X block; Y with ``se=True``), jointly with the training recipe."""

    layouts = LAYOUTS
    network = Network(RegNetArch, build, arch_cost)  # AnyNet's blocks, built and counted alike

    def __init__(
        self, *, layout: str = "small", se: bool = False, fix: Mapping[str, Any] | None = None
    ) -> None:
        suffix = "" if layout == "small" else f"-{layout}"
        self.name = f"regnet{'y' if se else ''}{suffix}"
        super().__init__(layout=layout, se=se, fix=fix)

    def _arch_spec(self) -> dict[str, BaseDistribution]:
        lay = self.layout
        return {
            "depth": IntDistribution(*lay.depth),
            "w0": IntDistribution(*lay.w0, step=QUANTUM),
            "wa": FloatDistribution(*lay.wa, log=True),
            "wm": FloatDistribution(*lay.wm, log=True),
            "group_w": CategoricalDistribution(lay.group_ws),
            "bot_mul": CategoricalDistribution(lay.bot_muls),
        }

    def _make_arch(self, p: Mapping[str, Any]) -> RegNetArch:
        lay = self.layout
        return RegNetArch(
            resolution=lay.resolution,
            stem_width=lay.stem_width,
            stem_stride=lay.stem_stride,
            strides=lay.strides,
            se_ratio=self.se_ratio,
            layout=lay.name,
            **{k: p[k] for k in _ARCH_KEYS},
        )

    def _arch_values(self, arch: RegNetArch) -> dict[str, Any]:
        return {k: getattr(arch, k) for k in _ARCH_KEYS}

    def _sibling(self, *, layout: str, se: bool) -> RegNetSpace:
        return RegNetSpace(layout=layout, se=se)

    def named_candidates(self) -> dict[str, Params]:
        """The cheapest and dearest candidates, and the published models at ImageNet scale
        (trained with pycls's recipe, which is ``Recipe()``: SGD, lr 0.8 at batch 1024, i.e.
        0.1 at 128, weight decay 5e-5, no regulariser)."""
        recipe = asdict(Recipe())
        out = dict(super().named_candidates())
        for name, pub in PUBLISHED.items():
            arch = {k: getattr(pub, k) for k in ("depth", "w0", "wa", "wm", "group_w")}
            params = {**arch, "bot_mul": 1.0, **recipe}
            if self.layout.name != "imagenet":  # structure keys only where they differ,
                params["layout"] = "imagenet"  # as ``to_params`` writes them
            if pub.se != self.se:
                params["se"] = pub.se
            out[name] = params
        return out

    def smallest_params(self) -> Params:
        """The cheapest candidate found on a grid: cost is monotone in depth, b and g but not
        in w0, wa, wm (quantisation and the stage count move with them)."""
        return self._extreme(high=False)

    def largest_params(self) -> Params:
        """The dearest candidate found on the same grid, everything else at its high end."""
        return self._extreme(high=True)

    def _extreme(self, *, high: bool) -> Params:
        key = f"_extreme_{high}"
        if key not in self.__dict__:
            corner = self._corner(high=high)
            grid: dict[str, list[Any]] = {}
            for name in ("w0", "wa", "wm"):
                dist = self._dists.get(name)
                if isinstance(dist, IntDistribution):
                    grid[name] = list(range(dist.low, dist.high + 1, dist.step))
                elif isinstance(dist, FloatDistribution):
                    grid[name] = [float(v) for v in np.geomspace(dist.low, dist.high, 9)]
            best, best_flops = corner, None
            for combo in itertools.product(*grid.values()):
                params = {**corner, **dict(zip(grid, combo, strict=True))}
                flops = self.cost(self.decode(params).arch, **self.default_task).flops
                if best_flops is None or (flops > best_flops if high else flops < best_flops):
                    best, best_flops = params, flops
            self.__dict__[key] = self.validate(best)
        return dict(self.__dict__[key])


def _factory(se: bool):
    def make(*, layout: str = "small", fix: Mapping[str, Any] | None = None) -> RegNetSpace:
        return RegNetSpace(layout=layout, se=se, fix=fix)

    block = "Y (X + squeeze-excite)" if se else "X"
    kind = "Y" if se else "X"
    make.__doc__ = f"RegNet{kind}: (d, w0, wa, wm, g, b) -> an AnyNet of {block} blocks"
    return make


for _name, _se in (("regnet", False), ("regnety", True)):
    _make = _factory(_se)
    register(_name, _make, summary=f"{_make.__doc__} ({LAYOUTS['small'].notes})")
