"""Random sampling under a cheap pre-evaluation constraint.

JointNAS never trains a candidate that breaks the resource limit: the limit is analytic, so it is
checked before the trial starts. ``FeasibleSampler`` is the plain Optuna sampler for that, and
``sample_feasible`` its draw of one feasible candidate for a per-candidate constraint
(``jointnas.constraints.draw_feasible`` underneath, the one capped rejection loop).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial

from jointnas.constraints import draw_feasible, is_feasible
from jointnas.samplers.support import Constraint, RandomFallback, fresh_seed
from jointnas.spaces.encoding import Encoder, Params

__all__ = ["Constraint", "FeasibleSampler", "is_feasible", "sample_feasible"]


def sample_feasible(
    encoder: Encoder,
    constraint: Constraint,
    rng: np.random.Generator,
    *,
    max_tries: int = 20_000,
    batch: int = 256,
) -> Params:
    """First feasible candidate among uniform random draws; capped, with an error that says
    how tight the constraint is.

    The shared ``draw_feasible`` runs on unit-cube points (``batch`` first, then doubling), so
    the params are ``from_unit``'s exactly; the check stops at the first feasible point of a
    chunk, so a per-candidate constraint is called as often as one at a time would be."""

    def first_feasible(U: np.ndarray) -> np.ndarray:
        mask = np.zeros(len(U), dtype=bool)
        for i, params in enumerate(encoder.from_unit(U)):
            if is_feasible(constraint(params)):
                mask[i] = True
                break  # one is wanted: the rest of the chunk is never checked
        return mask

    U = draw_feasible(
        lambda k: rng.random((k, len(encoder.names))),
        1,
        first_feasible,
        max_draws=max_tries,
        first=batch,
        hint=f"it admits less than 1 in {max_tries} of the space; loosen the limit",
    )
    return encoder.from_unit(U)[0]


class FeasibleSampler(BaseSampler):
    """Uniform random candidates of a fixed search space that satisfy ``constraint``.

    Draws for trial ``n`` come from a Generator seeded with ``(seed, n)``, so a resumed or
    parallel study proposes the same candidate for the same trial number without any state.
    """

    def __init__(
        self,
        *,
        search_space: Mapping[str, BaseDistribution],
        constraint: Constraint,
        seed: int | None = None,
        max_tries: int = 20_000,
    ) -> None:
        if not callable(constraint):
            raise TypeError("constraint must be a callable params -> sequence of floats")
        if max_tries < 1:
            raise ValueError(f"max_tries must be >= 1, got {max_tries}")
        self._encoder = Encoder(search_space)
        self._constraint = constraint
        self._seed = fresh_seed() if seed is None else int(seed)
        self._max_tries = max_tries
        self._fallback = RandomFallback(
            sampler="FeasibleSampler", distributions=search_space, seed=self._seed
        )

    def reseed_rng(self) -> None:
        self._seed = fresh_seed()
        self._fallback.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return dict(self._encoder.distributions)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        rng = np.random.default_rng([self._seed, trial.number])
        return sample_feasible(self._encoder, self._constraint, rng, max_tries=self._max_tries)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)
