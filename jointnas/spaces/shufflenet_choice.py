"""The SPOS / DetNAS choice-block space: one of four ShuffleNetV2 blocks per layer.

The searched parameters are ``choice_01`` .. ``choice_NN``, each an index into
``nets.shufflenet.CHOICES`` (3x3, 5x5, 7x7, Xception); the frame (stem, stage depths and
widths, last conv) is fixed by the layout. This is a pure architecture space: the recipe is
the evaluator's (the supernet's training recipe, or ``Recipe()`` for stand-alone training).

Layouts: ``small`` (default; 28 px, stem 3x3 s1 of width 16, three stages of four layers at
widths 48 / 96 / 192, each starting with stride 2, last conv 256) is what this machine searches;
``imagenet`` is megvii's SinglePathOneShot supernet (224 px, stem 3x3 s2 of width 16, stages
[4, 4, 8, 4] at widths [64, 160, 320, 640], last conv 1024, 20 choice layers). Named candidates
(``jointnas describe --space shufflenet-choice --preset NAME``): ``SPOS-ImageNet`` is the
reference layout with every layer at choice 0 (3x3, the plain ShuffleNetV2 unit), ``SPOS-best``
the reference's published searched subnet (choices 2,1,0,1,2,0,2,0,2,0,2,3,0,0,0,0,3,2,3,3).
Like RegNet's presets, both carry a ``layout`` key beside the choices, so the small space
describes them at ImageNet scale.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution

from jointnas.spaces.base import Candidate, Space, layer_row
from jointnas.spaces.encoding import Params
from jointnas.spaces.nets.blocks import Cost
from jointnas.spaces.nets.network import Network
from jointnas.spaces.nets.shufflenet import (
    CHOICES,
    ChoiceBlock,
    ShuffleArch,
    arch_cost,
    build,
    part_costs,
)
from jointnas.spaces.registry import register


@dataclass(frozen=True, kw_only=True)
class ShuffleLayout:
    """The fixed frame of the choice space."""

    name: str
    resolution: int
    stem_width: int
    stem_stride: int
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    last_width: int
    task: tuple[int, int] = (10, 1)  # num_classes, in_channels of ``jointnas describe``
    notes: str = field(default="", compare=False)

    @property
    def num_layers(self) -> int:
        return sum(self.depths)


LAYOUTS: dict[str, ShuffleLayout] = {
    "small": ShuffleLayout(
        name="small",
        resolution=28,
        stem_width=16,
        stem_stride=1,
        depths=(4, 4, 4),
        widths=(48, 96, 192),
        last_width=256,
        notes="28 px, 12 choice layers in stages [4, 4, 4] of widths [48, 96, 192]",
    ),
    "imagenet": ShuffleLayout(
        name="imagenet",
        resolution=224,
        stem_width=16,
        stem_stride=2,
        depths=(4, 4, 8, 4),
        widths=(64, 160, 320, 640),
        last_width=1024,
        task=(1000, 3),
        notes="megvii SPOS: 224 px, 20 choice layers in stages [4, 4, 8, 4]",
    ),
}
#: megvii SinglePathOneShot's published searched subnet (their README's architecture list)
SPOS_BEST = (2, 1, 0, 1, 2, 0, 2, 0, 2, 0, 2, 3, 0, 0, 0, 0, 3, 2, 3, 3)


def choice_names(count: int) -> list[str]:
    return [f"choice_{i + 1:02d}" for i in range(count)]


class ShuffleChoiceSpace(Space):
    """One choice (0-3) per layer of a fixed ShuffleNetV2 frame (see the module docstring)."""

    recipe_names = ()
    network = Network(ShuffleArch, build, arch_cost)
    layouts = LAYOUTS

    def __init__(self, *, layout: str = "small") -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; choose one of {sorted(LAYOUTS)}")
        self.layout = LAYOUTS[layout]
        self.name = "shufflenet-choice" + ("" if layout == "small" else f"-{layout}")
        num_classes, in_channels = self.layout.task
        self.default_task = {"num_classes": num_classes, "in_channels": in_channels}
        choices = CategoricalDistribution(tuple(range(len(CHOICES))))
        self._dists = {n: choices for n in choice_names(self.layout.num_layers)}

    @property
    def distributions(self) -> Mapping[str, BaseDistribution]:
        return self._dists

    @property
    def names(self) -> list[str]:
        return list(self._dists)

    def arch_of(self, choices: tuple[int, ...] | list[int]) -> ShuffleArch:
        """The architecture of a choice vector in this layout."""
        lay = self.layout
        return ShuffleArch(
            layout=lay.name,
            resolution=lay.resolution,
            stem_width=lay.stem_width,
            stem_stride=lay.stem_stride,
            depths=lay.depths,
            widths=lay.widths,
            last_width=lay.last_width,
            choices=tuple(int(c) for c in choices),
        )

    def decode(self, params: Mapping[str, Any]) -> Candidate:
        params = dict(params)
        layout = params.pop("layout", self.layout.name)
        if layout != self.layout.name:
            return ShuffleChoiceSpace(layout=layout).decode(params)
        p = self.validate(params)
        return Candidate(self.arch_of([p[n] for n in self.names]), None)

    def to_params(self, candidate: Candidate) -> Params:
        arch: ShuffleArch = candidate.arch
        if arch.layout != self.layout.name:
            out = ShuffleChoiceSpace(layout=arch.layout).to_params(candidate)
            return {**out, "layout": arch.layout}
        return self.validate(dict(zip(self.names, arch.choices, strict=True)))

    def cost_batch(self, X: np.ndarray, *, num_classes: int, in_channels: int) -> Cost:
        """Vectorised twin: a choice never changes the shapes around it, so a candidate's cost
        is the fixed parts plus a table lookup per layer."""
        table, fixed = self.choice_table(num_classes=num_classes, in_channels=in_channels)
        cols = self.encoder.columns(np.asarray(X, dtype=float))
        idx = np.stack([np.asarray(cols[n], dtype=np.int64) for n in self.names], axis=1)
        picked = table[np.arange(len(self.names))[None, :], idx]  # (rows, layers, 3)
        totals = picked.sum(axis=1) + fixed
        return Cost(*(totals[:, k].astype(np.int64) for k in range(3)))

    def choice_table(self, *, num_classes: int, in_channels: int) -> tuple[np.ndarray, np.ndarray]:
        """(layers x choices x [flops, params, acts]) of each choice block in place, and the
        cost of everything else (stem, head): the additive decomposition of ``cost``."""
        arch = self.arch_of([0] * self.layout.num_layers)
        parts = part_costs(arch, num_classes=num_classes, in_channels=in_channels)
        table = np.zeros((len(self.names), len(CHOICES), 3), dtype=np.int64)
        # a layer's input size is the output size of the part before it
        for (i, _, cin, cout, stride), before in zip(arch.layer_shapes(), parts[:-2], strict=True):
            for c in range(len(CHOICES)):
                cc = ChoiceBlock.cost(cin, cout, choice=c, stride=stride, size=before.size)
                table[i, c] = (cc.flops, cc.params, cc.acts)
        ends = [parts[0].cost, parts[-1].cost]
        fixed = np.array([sum(getattr(c, k) for c in ends) for k in ("flops", "params", "acts")])
        return table, fixed

    def _extreme(self, *, high: bool) -> Params:
        table, _ = self.choice_table(**self.default_task)
        flops = table[:, :, 0]
        pick = flops.argmax(axis=1) if high else flops.argmin(axis=1)
        return dict(zip(self.names, (int(c) for c in pick), strict=True))

    def smallest_params(self) -> Params:
        """Per layer, its cheapest choice (costs add up layer by layer)."""
        return self._extreme(high=False)

    def largest_params(self) -> Params:
        return self._extreme(high=True)

    def named_candidates(self) -> dict[str, Params]:
        out = dict(super().named_candidates())
        imagenet = ShuffleChoiceSpace(layout="imagenet")
        for name, choices in (("SPOS-ImageNet", (0,) * 20), ("SPOS-best", SPOS_BEST)):
            params = dict(zip(imagenet.names, choices, strict=True))
            out[name] = (
                params if self.layout.name == "imagenet" else {**params, "layout": "imagenet"}
            )
        return out

    def structure(self) -> dict[str, Any]:
        fixed = asdict(self.layout)
        fixed.pop("notes")
        return {"layout": fixed, "choices": list(CHOICES)}

    def layers(self, arch: Any, *, num_classes: int, in_channels: int) -> list[dict[str, Any]]:
        """Analytic rows: the stem, one per choice layer (its block and stride), the head."""
        notes = [f"3x3 s{arch.stem_stride}"]
        notes += [f"{CHOICES[arch.choices[i]]} s{s}" for i, _, _, _, s in arch.layer_shapes()]
        notes.append(f"1x1 to {arch.last_width}, pool, fc")
        parts = part_costs(arch, num_classes=num_classes, in_channels=in_channels)
        return [layer_row(part, note) for part, note in zip(parts, notes, strict=True)]


def _make(*, layout: str = "small") -> ShuffleChoiceSpace:
    """SPOS/DetNAS ShuffleNetV2 choice blocks (3x3, 5x5, 7x7, Xception) per layer"""
    return ShuffleChoiceSpace(layout=layout)


register("shufflenet-choice", _make, summary=f"{_make.__doc__} ({LAYOUTS['small'].notes})")
