"""What the AnyNet and RegNet spaces share: their frame (``Layout``), the jointly searched
recipe (``recipe_axes``), describe rows, and *structure keys*.

``decode`` also accepts ``layout`` and ``se`` beside the searched parameters, so a named
candidate (RegNet's published ImageNet models) can live in another layout of the same family than
the one an instance searches; ``to_params`` writes them back for such candidates. Both families
decode into architectures with the fields of ``nets.anynet.Body``, so one builder and one cost
serve both (each family declares its own ``network``: the pair, for its architecture type).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from optuna.distributions import BaseDistribution

from jointnas.spaces.base import Candidate, Space, layer_row
from jointnas.spaces.encoding import Params
from jointnas.spaces.nets.anynet import part_costs
from jointnas.spaces.recipe_axes import RECIPE_KEYS, recipe_distributions, recipe_of

#: squeeze width of the Y block, as a fraction of the block's input width (pycls SE_R)
SE_RATIO = 0.25
STRUCTURE_KEYS = ("layout", "se")


@dataclass(frozen=True, kw_only=True)
class Layout:
    """The fixed frame of a staged space: input size, stem, strides, per-block choices."""

    name: str
    resolution: int
    stem_width: int
    stem_stride: int
    strides: tuple[int, ...]
    bot_muls: tuple[float, ...]
    group_ws: tuple[int, ...]
    task: tuple[int, int] = (10, 1)  # num_classes, in_channels of ``jointnas describe``
    notes: str = field(default="", compare=False)


class StagedSpace(Space):
    """Base of the AnyNet and RegNet spaces (see the module docstring)."""

    recipe_names = RECIPE_KEYS
    layouts: ClassVar[Mapping[str, Layout]] = {}

    def __init__(
        self, *, layout: str = "small", se: bool = False, fix: Mapping[str, Any] | None = None
    ) -> None:
        """``layout`` picks the frame, ``se`` the Y block, ``fix`` pins parameters so they are
        not searched (every architecture parameter, for AutoTrain's recipe-only search)."""
        if layout not in self.layouts:
            raise ValueError(f"unknown layout {layout!r}; choose one of {sorted(self.layouts)}")
        if not isinstance(se, bool):
            raise ValueError(f"se must be true or false, got {se!r}")
        self.layout = self.layouts[layout]
        self.se = se
        self.se_ratio = SE_RATIO if se else 0.0
        num_classes, in_channels = self.layout.task
        self.default_task = {"num_classes": num_classes, "in_channels": in_channels}
        self.set_spec({**self._arch_spec(), **recipe_distributions()}, fix=fix)

    # -- what a subclass brings -------------------------------------------------------------
    @abstractmethod
    def _arch_spec(self) -> dict[str, BaseDistribution]:
        """The architecture distributions of this layout, in order."""

    @abstractmethod
    def _make_arch(self, p: Mapping[str, Any]) -> Any:
        """Complete, validated params -> the architecture dataclass."""

    @abstractmethod
    def _arch_values(self, arch: Any) -> dict[str, Any]:
        """Inverse of ``_make_arch`` on the architecture parameters."""

    @abstractmethod
    def _sibling(self, *, layout: str, se: bool) -> StagedSpace:
        """The same space family in another layout / block type, nothing pinned."""

    # -- the contract ---------------------------------------------------------------------------
    @property
    def distributions(self) -> Mapping[str, BaseDistribution]:
        return self._dists

    def decode(self, params: Mapping[str, Any]) -> Candidate:
        params = dict(params)
        layout, se = params.pop("layout", None), params.pop("se", None)
        if layout is not None or se is not None:  # a complete point of the family
            layout = self.layout.name if layout is None else layout
            se = self.se if se is None else se
            if (layout, se) != (self.layout.name, self.se) or self.pinned:
                return self._sibling(layout=layout, se=se).decode(params)
        p = {**self.validate(params), **self.fixed}
        return Candidate(self._make_arch(p), recipe_of(p))

    def to_params(self, candidate: Candidate) -> Params:
        arch = candidate.arch
        se = bool(arch.se_ratio)
        if (arch.layout, se) != (self.layout.name, self.se):
            out = self._sibling(layout=arch.layout, se=se).to_params(candidate)
            if arch.layout != self.layout.name:
                out["layout"] = arch.layout
            if se != self.se:
                out["se"] = se
            return out
        return self.searched({**self._arch_values(arch), **asdict(candidate.recipe)})

    def structure(self) -> dict[str, Any]:
        fixed: dict[str, Any] = {"layout": asdict(self.layout), "se_ratio": self.se_ratio}
        fixed["layout"].pop("notes")
        if self.pinned:
            fixed["pinned"] = self.pinned
        return fixed

    def layers(self, arch: Any, *, num_classes: int, in_channels: int) -> list[dict[str, Any]]:
        """Analytic rows: stem, one per stage (depth, bottleneck, group width, stride), head."""
        se = " se" if arch.se_ratio else ""
        notes = [f"3x3 s{arch.stem_stride}"]
        for st in arch.stages:
            notes.append(f"x{st.depth} b{st.bot_mul:g} g{st.group_w} s{st.stride}{se}")
        notes.append("pool, fc")
        parts = part_costs(arch, num_classes=num_classes, in_channels=in_channels)
        return [layer_row(part, note) for part, note in zip(parts, notes, strict=True)]
