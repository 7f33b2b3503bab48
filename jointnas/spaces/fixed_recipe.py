"""One training recipe for every candidate of any space: the architecture half of a space.

Comparing design spaces (``designs.edf``) or architectures under one recipe needs each space
without its recipe parameters, whatever recipe the space would search: the RegNet paper trains
every sampled model with the same recipe, so that only the design space differs. The view is a
``Space`` like any other, so ``Objective`` and ``TrainFromScratch`` train it unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import torch
from optuna.distributions import BaseDistribution

from jointnas.spaces.base import Candidate, Space
from jointnas.spaces.encoding import Params
from jointnas.spaces.nets.blocks import Cost
from jointnas.spaces.recipe import Recipe


class FixedRecipeSpace(Space):
    """The architecture parameters of ``base``; every candidate is trained with ``recipe``.

    Decoding fills the base's recipe parameters with any valid values (those of its smallest
    candidate) only to get the architecture out of ``base.decode``; the architecture never
    depends on them, and the candidate's recipe is always ``recipe``.
    """

    def __init__(self, base: Space, recipe: Recipe) -> None:
        self.base, self.recipe = base, recipe
        self.name = f"{base.key}+recipe"
        self.default_task = base.default_task
        self.recipe_names = ()
        arch = set(base.arch_names)
        self._dists = {k: d for k, d in base.distributions.items() if k in arch}
        if not self._dists:
            raise ValueError(f"space {base.key!r} has no architecture parameter to sample")
        corner = base.smallest_params()
        self._filler = {k: corner[k] for k in base.recipe_names}
        self._filler_recipe = base.decode(corner).recipe

    @property
    def distributions(self) -> Mapping[str, BaseDistribution]:
        return self._dists

    def decode(self, params: Mapping[str, Any]) -> Candidate:
        arch = self.base.decode({**self.validate(params), **self._filler}).arch
        return Candidate(arch, self.recipe)

    def to_params(self, candidate: Candidate) -> Params:
        full = self.base.to_params(Candidate(candidate.arch, self._filler_recipe))
        return self.validate(self.base.arch_params(full))

    def cost(self, arch: Any, *, num_classes: int, in_channels: int) -> Cost:
        return self.base.cost(arch, num_classes=num_classes, in_channels=in_channels)

    def build_model(
        self, arch: Any, *, num_classes: int, in_channels: int, seed: int | None = None
    ) -> torch.nn.Module:
        return self.base.build_model(
            arch, num_classes=num_classes, in_channels=in_channels, seed=seed
        )

    def smallest_params(self) -> Params:
        return self.base.arch_params(self.base.smallest_params())

    def largest_params(self) -> Params:
        return self.base.arch_params(self.base.largest_params())

    def structure(self) -> dict[str, Any]:
        base = {"base": self.base.key, "base_fingerprint": self.base.fingerprint()}
        return {**base, "recipe": asdict(self.recipe)}
