"""Which path the supernet trains at each step: SPOS's uniform sampling, as a trainer hook.

``UniformPaths`` draws every layer's choice uniformly (SPOS), or, with ``flops_bins``, first a
FLOPs bin uniformly and then a path inside it, as megvii's reference code does so that cheap and
dear subnets get equal training (uniform choices concentrate on mid-cost paths). Its state (the
generator, the step count) lives in the trainer's checkpoints, so a killed training resumes
with the same paths.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from jointnas.spaces.shufflenet_choice import ShuffleChoiceSpace
from jointnas.training.trainer import StepHook

#: candidates drawn per step to fill FLOPs bins (cheap: a table lookup each)
BIN_DRAWS = 64


class PathSampler:
    """Random paths of a choice space from an injected seed, optionally uniform over FLOPs."""

    def __init__(
        self,
        space: ShuffleChoiceSpace,
        *,
        seed: int,
        flops_bins: int = 0,
        num_classes: int = 10,
        in_channels: int = 1,
    ) -> None:
        if flops_bins < 0:
            raise ValueError(f"flops_bins must be >= 0, got {flops_bins}")
        self.space, self.flops_bins, self.seed = space, flops_bins, seed
        self.rng = np.random.default_rng(seed)
        table, fixed = space.choice_table(num_classes=num_classes, in_channels=in_channels)
        self.flops_table, self.fixed_flops = table[:, :, 0], int(fixed[0])
        self.lo = int(self.flops_table.min(axis=1).sum())
        self.hi = int(self.flops_table.max(axis=1).sum())

    @property
    def num_layers(self) -> int:
        return self.flops_table.shape[0]

    def flops(self, paths: np.ndarray) -> np.ndarray:
        """Analytic FLOPs of each row of ``paths`` (a table lookup per layer)."""
        paths = np.atleast_2d(paths)
        return self.flops_table[np.arange(self.num_layers), paths].sum(axis=1) + self.fixed_flops

    def uniform(self, n: int) -> np.ndarray:
        return self.rng.integers(0, self.flops_table.shape[1], size=(n, self.num_layers))

    def sample(self) -> tuple[int, ...]:
        if not self.flops_bins:
            return tuple(int(c) for c in self.uniform(1)[0])
        draws = self.uniform(BIN_DRAWS)
        edges = np.linspace(self.lo, self.hi, self.flops_bins + 1)
        where = np.searchsorted(edges, self.flops(draws) - self.fixed_flops) - 1
        bins = np.clip(where, 0, self.flops_bins - 1)
        full = np.unique(bins)
        pick = draws[self.rng.choice(np.flatnonzero(bins == self.rng.choice(full)))]
        return tuple(int(c) for c in pick)

    def config(self) -> dict[str, Any]:
        return {"seed": self.seed, "flops_bins": self.flops_bins}

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


class UniformPaths(StepHook):
    """SPOS: a fresh random path before every training step."""

    def __init__(self, sampler: PathSampler) -> None:
        self.sampler = sampler
        self.trained: list[tuple[int, ...]] = []  # the paths of this process's steps, in order

    def config(self) -> dict[str, Any]:
        return {"kind": "uniform", **self.sampler.config()}

    def before_step(self, model: nn.Module, step: int) -> None:
        path = self.sampler.sample()
        model.set_path(path)
        self.trained.append(path)

    def state_dict(self) -> dict[str, Any]:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state)
