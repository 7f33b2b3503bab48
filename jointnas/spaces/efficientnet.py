"""EfficientNet's joint space: the B0 block table under compound-scaling knobs, and the recipe.

After "EfficientNet: Rethinking Model Scaling for CNNs" (Tan & Le, 2019) and seed 004. The base
is B0's table of seven MBConv stages (timm ``_gen_efficientnet``: kernel, expansion, stride,
channels, repeats; SE 0.25 of the block input, swish, stem 32, head 1280). A candidate is what
EfficientNet scales plus what MnasNet searched per stage, in the FBNetV3 spirit of one joint
space: width multiplier, depth multiplier, input resolution, each stage's kernel (3 or 5) and
expansion (3..6; stage 1 is B0's depthwise-separable block, expansion 1), and the training recipe
on the shared axes (``jointnas.spaces.recipe_axes``). Widths and depths follow
from the multipliers by the reference ``round_filters`` / ``round_repeats`` while decoding, so
``jointnas.designs.scaling`` scales a found network by changing three numbers.

Two layouts (the ``layout`` option). ``small`` (default) is for 28 px digits: B0's stem stride 2
but one stride-2 stage fewer (stage 6 keeps its resolution), so a 28 px input ends at 2x2 instead
of vanishing, and multipliers low enough that a candidate trains in seconds on a CPU (0.12-6.6
MFLOPs, as fbnetv3-small's 0.11-7.6). ``imagenet`` is B0's own frame (output stride 32) with
ranges holding B0..B7. The channel divisor (8 in the reference) is the ``divisor`` option: tiny
nets need a finer one, or a width step of 5% changes no layer at all.

The published models B0..B3 are named candidates at ImageNet scale (``jointnas describe --preset
EfficientNet-B0``), while the default space searches the small layout: ``decode`` also accepts
the *structure keys* ``layout`` and ``divisor`` beside the searched parameters and hands such a
candidate to that layout's space; ``to_params`` writes them back (as the AnyNet/RegNet spaces do).
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
from jointnas.spaces.encoding import Params
from jointnas.spaces.nets.blocks import Cost
from jointnas.spaces.nets.efficientnet import (
    SE_RATIO,
    EfficientNetArch,
    StageDef,
    arch_cost,
    batch_cost,
    build,
    part_costs,
)
from jointnas.spaces.nets.network import Network
from jointnas.spaces.recipe import Recipe
from jointnas.spaces.recipe_axes import RECIPE_KEYS, RECIPE_RANGES, recipe_distributions, recipe_of
from jointnas.spaces.registry import register

STRUCTURE_KEYS = ("layout", "divisor")

#: EfficientNet-B0 (timm ``_gen_efficientnet``, the TF reference's ``_DEFAULT_BLOCKS_ARGS``):
#: kernel, expansion, output channels, repeats, stride of each of the seven stages
B0_STAGES: tuple[StageDef, ...] = (
    StageDef(kernel=3, expansion=1, channels=16, repeats=1, stride=1),
    StageDef(kernel=3, expansion=6, channels=24, repeats=2, stride=2),
    StageDef(kernel=5, expansion=6, channels=40, repeats=2, stride=2),
    StageDef(kernel=3, expansion=6, channels=80, repeats=3, stride=2),
    StageDef(kernel=5, expansion=6, channels=112, repeats=3, stride=1),
    StageDef(kernel=5, expansion=6, channels=192, repeats=4, stride=2),
    StageDef(kernel=3, expansion=6, channels=320, repeats=1, stride=1),
)
STEM_CHANNELS, HEAD_CHANNELS, ACT = 32, 1280, "swish"

#: (width, depth, resolution, dropout) of the published models, as timm and the TF reference
PUBLISHED: dict[str, tuple[float, float, int, float]] = {
    "EfficientNet-B0": (1.0, 1.0, 224, 0.2),
    "EfficientNet-B1": (1.0, 1.1, 240, 0.2),
    "EfficientNet-B2": (1.1, 1.2, 260, 0.3),
    "EfficientNet-B3": (1.2, 1.4, 300, 0.3),
}
#: the paper's recipe on our axes: RMSProp at the reference's 0.016 per 256 images (the trainer
#: scales RMSProp's lr by 0.05), weight decay 1e-5, stochastic depth 0.2, label smoothing 0.1 and
#: weight EMA as in the TF reference; dropout per model from ``PUBLISHED``. The reference's
#: AutoAugment has no counterpart on our RandAugment axis, so augment is left off (0)
PAPER_RECIPE: dict[str, Any] = {
    "optimizer": "rmsprop",
    "lr": 0.32,
    "weight_decay": 1e-5,
    "mixup": 0.0,
    "drop_path": 0.2,
    "ema": True,
    "label_smoothing": 0.1,
    "augment": 0.0,
}


@dataclass(frozen=True)
class Layout:
    """The frame around B0's table and the ranges searched in it ((low, high, step))."""

    name: str
    resolution: tuple[int, int, int]
    width_mult: tuple[float, float, float]
    depth_mult: tuple[float, float, float]
    stem_stride: int
    strides: tuple[int, ...]
    kernels: tuple[int, ...] = (3, 5)
    expansion: tuple[int, int] = (3, 6)
    #: the recipe ranges this layout searches (a key of ``recipe_axes.RECIPE_RANGES``)
    recipe: str = "small"
    task: tuple[int, int] = (10, 1)  # num_classes, in_channels for `jointnas spaces`/describe
    notes: str = field(default="", compare=False)


SMALL = Layout(
    name="small",
    resolution=(16, 28, 4),
    width_mult=(0.25, 0.6, 0.05),
    depth_mult=(0.2, 1.0, 0.1),
    stem_stride=2,
    strides=(1, 2, 2, 2, 1, 1, 1),
    notes="B0's table at 16-28 px, output stride 16: a candidate is 0.12-6.6 MFLOPs",
)
IMAGENET = Layout(
    name="imagenet",
    resolution=(192, 600, 4),
    width_mult=(0.5, 2.0, 0.05),
    depth_mult=(0.5, 3.1, 0.1),
    stem_stride=2,
    strides=tuple(st.stride for st in B0_STAGES),
    recipe="imagenet",
    task=(1000, 3),
    notes="B0's own frame (output stride 32), ranges holding B0..B7",
)
LAYOUTS: dict[str, Layout] = {"small": SMALL, "imagenet": IMAGENET}


def _canon(mult: float) -> float:
    """Multipliers rounded to 6 decimals: a grid value reached by float arithmetic (0.25 + 2 *
    0.05) must round to the same widths as the literal, also in the vectorised cost."""
    return round(float(mult), 6)


class EfficientNetSpace(Space):
    """The EfficientNet joint (architecture, recipe) space in one layout, with one divisor."""

    recipe_names = RECIPE_KEYS
    network = Network(EfficientNetArch, build, arch_cost)
    layouts = LAYOUTS

    def __init__(
        self, *, layout: str = "small", divisor: int = 8, fix: Mapping[str, Any] | None = None
    ) -> None:
        """``layout`` picks the frame, ``divisor`` the channel rounding, ``fix`` pins
        parameters so they are not searched (AutoTrain: every architecture parameter)."""
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; choose one of {sorted(LAYOUTS)}")
        if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 1:
            raise ValueError(f"divisor must be a positive integer, got {divisor!r}")
        self.layout, self.divisor = LAYOUTS[layout], divisor
        lay = self.layout
        self.name = "efficientnet" + ("" if layout == "small" else f"-{layout}")
        self.default_task = {"num_classes": lay.task[0], "in_channels": lay.task[1]}
        spec: dict[str, Any] = {
            "resolution": IntDistribution(*lay.resolution[:2], step=lay.resolution[2]),
            "width_mult": FloatDistribution(*lay.width_mult[:2], step=lay.width_mult[2]),
            "depth_mult": FloatDistribution(*lay.depth_mult[:2], step=lay.depth_mult[2]),
        }
        for i in range(1, len(B0_STAGES) + 1):
            spec[f"s{i}_kernel"] = CategoricalDistribution(lay.kernels)
            spec[f"s{i}_expansion"] = 1 if i == 1 else IntDistribution(*lay.expansion)
        spec.update(recipe_distributions(RECIPE_RANGES[lay.recipe]))
        self.set_spec(spec, fix=fix)

    @property
    def distributions(self) -> Mapping[str, BaseDistribution]:
        return self._dists

    def structure(self) -> dict[str, Any]:
        layout = asdict(self.layout)
        layout.pop("notes")
        out = {
            "layout": layout,
            "divisor": self.divisor,
            "stages": [asdict(st) for st in B0_STAGES],
            "stem_channels": STEM_CHANNELS,
            "head_channels": HEAD_CHANNELS,
            "se_ratio": SE_RATIO,
            "act": ACT,
        }
        if self.pinned:
            out["pinned"] = self.pinned
        return out

    # -- params <-> candidates ------------------------------------------------------------
    def _sibling(self, params: Mapping[str, Any]) -> EfficientNetSpace | None:
        """The space a params dict with structure keys belongs to (None: this one as is)."""
        if not any(k in params for k in STRUCTURE_KEYS):
            return None
        layout = params.get("layout", self.layout.name)
        divisor = params.get("divisor", self.divisor)
        if (layout, divisor) == (self.layout.name, self.divisor) and not self.pinned:
            return self
        return EfficientNetSpace(layout=layout, divisor=divisor)

    def decode(self, params: Mapping[str, Any]) -> Candidate[EfficientNetArch, Recipe]:
        sibling = self._sibling(params)
        if sibling is not None:
            return sibling.decode({k: v for k, v in params.items() if k not in STRUCTURE_KEYS})
        p, lay = {**self.validate(params), **self.fixed}, self.layout
        stages = tuple(
            StageDef(
                kernel=p[f"s{i}_kernel"],
                expansion=p[f"s{i}_expansion"],
                channels=base.channels,
                repeats=base.repeats,
                stride=stride,
            )
            for i, (base, stride) in enumerate(zip(B0_STAGES, lay.strides, strict=True), 1)
        )
        arch = EfficientNetArch(
            resolution=p["resolution"],
            width_mult=_canon(p["width_mult"]),
            depth_mult=_canon(p["depth_mult"]),
            stages=stages,
            stem_stride=lay.stem_stride,
            stem_channels=STEM_CHANNELS,
            head_channels=HEAD_CHANNELS,
            divisor=self.divisor,
            act=ACT,
        )
        return Candidate(arch, recipe_of(p))

    def to_params(self, candidate: Candidate) -> Params:
        arch, recipe = candidate.arch, candidate.recipe
        frame = (arch.stem_stride, tuple(st.stride for st in arch.stages))
        if frame != (self.layout.stem_stride, self.layout.strides) or arch.divisor != self.divisor:
            for name, lay in LAYOUTS.items():
                if frame == (lay.stem_stride, lay.strides):
                    other = EfficientNetSpace(layout=name, divisor=arch.divisor)
                    return {"layout": name, "divisor": arch.divisor, **other.to_params(candidate)}
            raise ValueError(f"strides {frame} are those of no {self.name} layout")
        table = [(st.channels, st.repeats) for st in arch.stages]
        fixed = (arch.stem_channels, arch.head_channels, arch.act)
        if table != [(st.channels, st.repeats) for st in B0_STAGES] or fixed != (
            STEM_CHANNELS,
            HEAD_CHANNELS,
            ACT,
        ):
            raise ValueError("the architecture's base table is not B0's")
        flat: dict[str, Any] = {
            "resolution": arch.resolution,
            "width_mult": arch.width_mult,
            "depth_mult": arch.depth_mult,
        }
        for i, st in enumerate(arch.stages, start=1):
            flat.update({f"s{i}_kernel": st.kernel, f"s{i}_expansion": st.expansion})
        flat.update(asdict(recipe))
        return self.searched(flat)

    def named_candidates(self) -> dict[str, Params]:
        """``smallest``, ``largest`` and the published EfficientNet-B0..B3 at ImageNet scale
        (structure keys ``layout``/``divisor``; B0's kernels and expansions, the paper's
        recipe with each model's dropout)."""
        named = super().named_candidates()
        for name, (width, depth, resolution, dropout) in PUBLISHED.items():
            params: Params = {"layout": "imagenet", "divisor": 8}
            params.update(resolution=resolution, width_mult=width, depth_mult=depth)
            for i, st in enumerate(B0_STAGES, start=1):
                params[f"s{i}_kernel"] = st.kernel
                if i > 1:
                    params[f"s{i}_expansion"] = st.expansion
            named[name] = {**params, **PAPER_RECIPE, "dropout": dropout}
        return named

    # -- the network ------------------------------------------------------------------------
    def cost_batch(self, X: Any, *, num_classes: int, in_channels: int) -> Cost:
        """Vectorised twin of ``cost`` over an encoded population (``batch_cost``)."""
        cols = self.value_columns(X)
        base = self.decode(self.smallest_params()).arch
        return batch_cost(cols, base, num_classes=num_classes, in_channels=in_channels)

    def layers(self, arch: Any, *, num_classes: int, in_channels: int) -> list[dict[str, Any]]:
        """Analytic rows: stem, one per stage (kernel, expansion, depth, stride, width), head."""
        notes = [f"3x3 s{arch.stem_stride} {arch.act}"]
        for st, depth in zip(arch.stages, arch.depths, strict=True):
            notes.append(f"k{st.kernel} e{st.expansion} x{depth} s{st.stride} se {arch.act}")
        notes.append(f"1x1 -> {arch.head_width}, pool, dropout, fc")
        parts = part_costs(arch, num_classes=num_classes, in_channels=in_channels)
        return [layer_row(part, note) for part, note in zip(parts, notes, strict=True)]


def make_space(
    *, layout: str = "small", divisor: int = 8, fix: Mapping[str, Any] | None = None
) -> EfficientNetSpace:
    """EfficientNet-B0's table under width/depth/resolution multipliers and per-stage kernel and
    expansion, with the recipe; layout 'small' (28 px, default) or 'imagenet'."""
    return EfficientNetSpace(layout=layout, divisor=divisor, fix=fix)


register(
    "efficientnet",
    make_space,
    summary="EfficientNet-B0's table, compound-scaling knobs + per-stage ops; presets B0..B3",
)
