"""FBNetV3's joint space: an inverted-residual network and its training recipe.

After FBNetV3 (Dai et al., 2020), Table 1, and seed 000: the architecture is the input
resolution and, per stage, kernel size, expansion ratio, width and depth; stride, squeeze-excite
and activation are fixed per stage as in the paper's table. The recipe is optimizer, learning
rate, weight decay, mixup alpha, dropout, stochastic-depth rate, EMA and label smoothing.

Two presets: ``small`` (the default) is scaled for 28x28 grey digits so a candidate trains in
seconds on a CPU; ``imagenet`` is our transcription of the paper's table (widths rounded to
multiples of 8). A range whose low equals its high is a fixed value, not a searched parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from jointnas.spaces.base import Candidate, Space, layer_row
from jointnas.spaces.encoding import Params, pin
from jointnas.spaces.nets.blocks import Cost
from jointnas.spaces.nets.cost import cost
from jointnas.spaces.nets.fbnetv3 import Arch, Stage, arch_cost, batch_cost, build, stage_costs
from jointnas.spaces.nets.model import build_model
from jointnas.spaces.recipe import OPTIMIZERS, Recipe
from jointnas.spaces.registry import register

ACTIVATIONS = ("relu", "hswish", "swish")


@dataclass(frozen=True)
class StageSpec:
    """Ranges of one stage (inclusive; width in steps of 8)."""

    kernels: tuple[int, ...]
    expansion: tuple[int, int]
    width: tuple[int, int]
    depth: tuple[int, int]
    stride: int
    se: bool
    act: str


@dataclass(frozen=True)
class Preset:
    """A whole space as data: architecture ranges and recipe ranges."""

    name: str
    resolution: tuple[int, int, int]  # low, high, step
    stem_width: tuple[int, int]
    stem_stride: int
    stem_act: str
    stages: tuple[StageSpec, ...]
    head_width: int
    head_act: str
    lr: tuple[float, float] = (0.01, 0.5)
    weight_decay: tuple[float, float] = (1e-5, 1e-3)
    mixup: tuple[float, float] = (0.0, 1.0)
    dropout: tuple[float, float] = (0.0, 0.3)
    drop_path: tuple[float, float] = (0.0, 0.3)
    label_smoothing: tuple[float, float] = (0.0, 0.2)
    optimizers: tuple[str, ...] = OPTIMIZERS
    notes: str = field(default="", compare=False)


_K = (3, 5)
SMALL = Preset(
    name="small",
    resolution=(16, 28, 4),
    stem_width=(8, 16),
    stem_stride=2,
    stem_act="hswish",
    stages=(
        StageSpec(_K, (1, 1), (8, 16), (1, 2), 1, False, "relu"),
        StageSpec(_K, (2, 6), (16, 32), (1, 3), 2, False, "relu"),
        StageSpec(_K, (2, 6), (24, 48), (1, 3), 2, True, "hswish"),
        StageSpec(_K, (2, 6), (40, 64), (1, 3), 1, True, "hswish"),
    ),
    head_width=256,
    head_act="hswish",
    notes="scaled for 28x28 grey digits: a candidate is 0.11-7.6 MFLOPs",
)

IMAGENET = Preset(
    name="imagenet",
    resolution=(224, 272, 8),
    stem_width=(16, 24),
    stem_stride=2,
    stem_act="hswish",
    stages=(
        StageSpec(_K, (1, 1), (16, 24), (1, 2), 1, False, "hswish"),
        StageSpec(_K, (2, 6), (24, 32), (2, 5), 2, False, "hswish"),
        StageSpec(_K, (2, 6), (32, 48), (2, 5), 2, True, "hswish"),
        StageSpec(_K, (2, 6), (64, 88), (2, 5), 2, False, "hswish"),
        StageSpec(_K, (2, 6), (112, 144), (2, 6), 1, True, "hswish"),
        StageSpec(_K, (2, 6), (184, 224), (3, 7), 2, True, "hswish"),
        StageSpec(_K, (6, 6), (216, 248), (1, 2), 1, True, "hswish"),
    ),
    head_width=1984,
    head_act="hswish",
    lr=(0.01, 0.5),
    weight_decay=(1e-6, 1e-4),
    dropout=(0.1, 0.3),
    drop_path=(0.0, 0.4),
    notes="FBNetV3 Table 1 as transcribed here; widths rounded to multiples of 8",
)

PRESETS: dict[str, Preset] = {"small": SMALL, "imagenet": IMAGENET}

RECIPE_KEYS = (
    "optimizer",
    "lr",
    "weight_decay",
    "mixup",
    "dropout",
    "drop_path",
    "ema",
    "label_smoothing",
)
_STAGE_KEYS = ("kernel", "expansion", "width", "depth")


def recipe_distributions(preset: Preset) -> dict[str, BaseDistribution]:
    """The recipe parameters of ``preset``, in ``RECIPE_KEYS`` order. Other spaces that search
    the recipe jointly (``efficientnet``) take theirs from here, so a recipe value means the
    same in every space and AutoTrain transfer compares like with like."""
    return {
        "optimizer": CategoricalDistribution(preset.optimizers),
        "lr": FloatDistribution(*preset.lr, log=True),
        "weight_decay": FloatDistribution(*preset.weight_decay, log=True),
        "mixup": FloatDistribution(*preset.mixup),
        "dropout": FloatDistribution(*preset.dropout),
        "drop_path": FloatDistribution(*preset.drop_path),
        "ema": CategoricalDistribution((False, True)),
        "label_smoothing": FloatDistribution(*preset.label_smoothing),
    }


def _int(low: int, high: int, step: int = 1) -> IntDistribution | int:
    """A searched int range, or the fixed value when the range is a single point."""
    return low if low == high else IntDistribution(low, high, step=step)


class FBNetV3Space(Space):
    """The FBNetV3 joint (architecture, recipe) space; ``preset`` is 'small' or 'imagenet'."""

    name = "fbnetv3"
    recipe_names = RECIPE_KEYS

    def __init__(
        self, *, preset: str | Preset = "small", fix: Mapping[str, Any] | None = None
    ) -> None:
        """``fix`` pins parameters (validated against the preset) so they are not searched:
        e.g. every architecture parameter, for FBNetV3's AutoTrain (recipe-only search)."""
        if isinstance(preset, str):
            if preset not in PRESETS:
                raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
            preset = PRESETS[preset]
        self.preset = preset
        self.name = f"fbnetv3-{preset.name}"
        if preset.name == "imagenet":
            self.default_task = {"num_classes": 1000, "in_channels": 3}
        spec: dict[str, BaseDistribution | Any] = {
            "resolution": _int(*preset.resolution),
            "stem_width": _int(*preset.stem_width, 8),
        }
        for i, st in enumerate(preset.stages, start=1):
            spec[f"s{i}_kernel"] = (
                CategoricalDistribution(st.kernels) if len(st.kernels) > 1 else st.kernels[0]
            )
            spec[f"s{i}_expansion"] = _int(*st.expansion)
            spec[f"s{i}_width"] = _int(*st.width, 8)
            spec[f"s{i}_depth"] = _int(*st.depth)
        spec.update(recipe_distributions(preset))
        self._dists, self.fixed, self.pinned = pin(spec, fix, space=self.name)
        if self.pinned:
            self.name += "-fixed"
        self.recipe_names = tuple(k for k in RECIPE_KEYS if k in self._dists)

    @property
    def distributions(self) -> Mapping[str, BaseDistribution]:
        return self._dists

    def cost_batch(self, X: Any, *, num_classes: int, in_channels: int) -> Cost:
        return batch_cost(self, X, num_classes=num_classes, in_channels=in_channels)

    def layers(self, arch: Any, *, num_classes: int, in_channels: int) -> list[dict[str, Any]]:
        """Analytic rows: stem, one per stage (kernel, expansion, width x depth), head."""
        rows = []
        parts = stage_costs(arch, num_classes=num_classes, in_channels=in_channels)
        for k, (name, size, c) in enumerate(parts):
            if name == "stem":
                channels, note = arch.stem_width, f"3x3 s{arch.stem_stride}"
            elif name == "head":
                channels, note = num_classes, f"1x1 -> {arch.head_width}, pool, fc"
            else:
                st = arch.stages[k - 1]
                channels = st.width
                se = " se" if st.se else ""
                note = f"k{st.kernel} e{st.expansion} x{st.depth} s{st.stride}{se} {st.act}"
            out = [channels] if name == "head" else [channels, size, size]
            rows.append(layer_row(name, out, c, note))
        return rows

    def structure(self) -> dict[str, Any]:
        fixed = asdict(self.preset)
        fixed.pop("notes")
        if self.pinned:
            fixed["pinned"] = self.pinned
        return fixed

    def decode(self, params: Mapping[str, Any]) -> Candidate[Arch, Recipe]:
        p = {**self.validate(params), **self.fixed}
        pre = self.preset
        stages = tuple(
            Stage(
                kernel=p[f"s{i}_kernel"],
                expansion=p[f"s{i}_expansion"],
                width=p[f"s{i}_width"],
                depth=p[f"s{i}_depth"],
                stride=st.stride,
                se=st.se,
                act=st.act,
            )
            for i, st in enumerate(pre.stages, start=1)
        )
        arch = Arch(
            resolution=p["resolution"],
            stem_width=p["stem_width"],
            stem_stride=pre.stem_stride,
            stem_act=pre.stem_act,
            stages=stages,
            head_width=pre.head_width,
            head_act=pre.head_act,
        )
        return Candidate(arch, Recipe(**{k: p[k] for k in RECIPE_KEYS}))

    def to_params(self, candidate: Candidate) -> Params:
        arch, recipe = candidate.arch, candidate.recipe
        flat: dict[str, Any] = {"resolution": arch.resolution, "stem_width": arch.stem_width}
        for i, stage in enumerate(arch.stages, start=1):
            flat.update({f"s{i}_{k}": getattr(stage, k) for k in _STAGE_KEYS})
        flat.update(asdict(recipe))
        for key, value in self.fixed.items():
            if flat.get(key) != value:
                raise ValueError(f"{key} = {flat.get(key)!r} but this preset fixes it at {value!r}")
        return self.validate({k: v for k, v in flat.items() if k in self._dists})

    def smallest_params(self) -> Params:
        """The cheapest candidate: every architecture choice at its low end (cost is monotone
        in each of them); recipe values do not change cost."""
        return self._corner(high=False)

    def largest_params(self) -> Params:
        """The most expensive candidate: every architecture choice at its high end."""
        return self._corner(high=True)

    def _corner(self, *, high: bool) -> Params:
        pick = max if high else min
        out: Params = {}
        for name, dist in self._dists.items():
            if isinstance(dist, CategoricalDistribution):
                out[name] = pick(dist.choices) if name.endswith("_kernel") else dist.choices[0]
            else:
                out[name] = dist.high if high else dist.low  # type: ignore[attr-defined]
        return out


def _factory(preset: str):
    def make(*, fix: Mapping[str, Any] | None = None) -> FBNetV3Space:
        return FBNetV3Space(preset=preset, fix=fix)

    make.__doc__ = f"FBNetV3's joint space, preset {preset!r}: {PRESETS[preset].notes}"
    return make


cost.register(Arch, arch_cost)
build_model.register(Arch, build)
for _preset in PRESETS:
    register(f"fbnetv3-{_preset}", _factory(_preset), summary=PRESETS[_preset].notes)
