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
    IntDistribution,
)

from jointnas.spaces.base import Candidate, Space, layer_row
from jointnas.spaces.encoding import Params
from jointnas.spaces.nets.blocks import Cost
from jointnas.spaces.nets.fbnetv3 import Arch, Stage, arch_cost, batch_cost, build, part_costs
from jointnas.spaces.nets.network import Network
from jointnas.spaces.recipe import Recipe
from jointnas.spaces.recipe_axes import (
    RECIPE_KEYS,
    RECIPE_RANGES,
    RecipeRanges,
    recipe_distributions,
    recipe_of,
)
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


@dataclass(frozen=True, kw_only=True)
class Preset(RecipeRanges):
    """A whole space as data: architecture ranges and (inherited) recipe ranges."""

    name: str
    resolution: tuple[int, int, int]  # low, high, step
    stem_width: tuple[int, int]
    stem_stride: int
    stem_act: str
    stages: tuple[StageSpec, ...]
    head_width: int
    head_act: str
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
    **asdict(RECIPE_RANGES["imagenet"]),
    notes="FBNetV3 Table 1 as transcribed here; widths rounded to multiples of 8",
)

PRESETS: dict[str, Preset] = {"small": SMALL, "imagenet": IMAGENET}

_STAGE_KEYS = ("kernel", "expansion", "width", "depth")


def _int(low: int, high: int, step: int = 1) -> IntDistribution | int:
    """A searched int range, or the fixed value when the range is a single point."""
    return low if low == high else IntDistribution(low, high, step=step)


class FBNetV3Space(Space):
    """The FBNetV3 joint (architecture, recipe) space; ``preset`` is 'small' or 'imagenet'."""

    name = "fbnetv3"
    recipe_names = RECIPE_KEYS
    network = Network(Arch, build, arch_cost)

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
        self.set_spec(spec, fix=fix)

    @property
    def distributions(self) -> Mapping[str, BaseDistribution]:
        return self._dists

    def cost_batch(self, X: Any, *, num_classes: int, in_channels: int) -> Cost:
        """Vectorised twin of ``cost`` over an encoded population (``batch_cost``)."""
        cols = self.value_columns(X)
        return batch_cost(cols, self.preset, num_classes=num_classes, in_channels=in_channels)

    def layers(self, arch: Any, *, num_classes: int, in_channels: int) -> list[dict[str, Any]]:
        """Analytic rows: stem, one per stage (kernel, expansion, width x depth), head."""
        notes = [f"3x3 s{arch.stem_stride}"]
        for st in arch.stages:
            se = " se" if st.se else ""
            notes.append(f"k{st.kernel} e{st.expansion} x{st.depth} s{st.stride}{se} {st.act}")
        notes.append(f"1x1 -> {arch.head_width}, pool, fc")
        parts = part_costs(arch, num_classes=num_classes, in_channels=in_channels)
        return [layer_row(part, note) for part, note in zip(parts, notes, strict=True)]

    def structure(self) -> dict[str, Any]:
        fixed = asdict(self.preset)
        fixed.pop("notes")
        fixed.pop("augment")  # a recipe range (in the distributions); absent from old records
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
        return Candidate(arch, recipe_of(p))

    def to_params(self, candidate: Candidate) -> Params:
        arch, recipe = candidate.arch, candidate.recipe
        flat: dict[str, Any] = {"resolution": arch.resolution, "stem_width": arch.stem_width}
        for i, stage in enumerate(arch.stages, start=1):
            flat.update({f"s{i}_{k}": getattr(stage, k) for k in _STAGE_KEYS})
        flat.update(asdict(recipe))
        return self.searched(flat)

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


for _preset in PRESETS:
    register(f"fbnetv3-{_preset}", _factory(_preset), summary=PRESETS[_preset].notes)
