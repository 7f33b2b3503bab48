"""What the jointnas samplers share: the constraint convention, argument checks, seeds, fallback.

``FeasibleSampler``, ``CoarseSampler`` and ``AdaptiveGeneticSampler`` each propose whole
candidates of one fixed search space, and must behave alike at the edges: one convention for a
cheap constraint (Optuna's: feasible when every value is <= 0, ``jointnas.constraints``), one
kind of fresh seed when none is given, one refusal of multi-objective studies where a sampler
ranks by one value, and one random fallback, with a warning, for a parameter the sampler did not
propose. Keeping these once keeps those edges identical across samplers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import RandomSampler
from optuna.study import Study
from optuna.trial import FrozenTrial

#: A cheap pre-evaluation constraint: params -> values, feasible when every value is <= 0.
Constraint = Callable[[Mapping[str, Any]], Sequence[float]]

_LOG = optuna.logging.get_logger(__name__)


_BLAS: Any = None  # threadpoolctl's controller of the BLAS libraries, made on first use


def one_blas_thread() -> Any:
    """A context in which NumPy's and SciPy's BLAS run on one thread (process-wide while it
    lasts: a training in another thread of the process gets one BLAS thread meanwhile).

    A sampler's linear algebra is small (at most a few thousand by a few hundred); a second
    BLAS thread gains nothing there and, where torch's OpenMP threads are still spinning after a
    fit, it has to wait for a core: measured on 2 cores at 1,000 trials, a 300 x 300 Cholesky
    took 10 ms instead of 0.6 ms, and a GP proposal 177 ms instead of 122 ms."""
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def fresh_seed() -> int:
    """An OS-entropy seed small enough for every consumer (RandomSampler's is 32-bit)."""
    return int(np.random.SeedSequence().generate_state(1)[0])


def is_int(value: Any) -> bool:
    """An int or numpy integer, but not a bool (``True`` is no population size)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A finite int or float (numpy scalars included), not a bool."""
    return is_int(value) or (isinstance(value, (float, np.floating)) and math.isfinite(value))


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int >= ``minimum``: TypeError when it is no int, ValueError when small."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_single_objective(study: Study, sampler: str, why: str) -> None:
    """Refuse a multi-objective study, saying why ``sampler`` needs one value and what to use."""
    if len(study.directions) > 1:
        raise ValueError(
            f"{sampler} supports single-objective studies only: {why}; use "
            "optuna.samplers.NSGAIISampler for a multi-objective study"
        )


def predict_rows(predictor: Any, X: np.ndarray) -> np.ndarray:
    """One ``predictor.predict`` call on encoded rows, checked to give one float per row (a
    predictor returning another shape would otherwise rank the wrong candidates silently)."""
    if not len(X):
        return np.empty(0)
    scores = np.asarray(predictor.predict(X), dtype=float).reshape(-1)
    if scores.shape != (len(X),):
        raise ValueError(f"predictor.predict returned {scores.shape[0]} values for {len(X)} rows")
    return scores


class RandomFallback:
    """Optuna's ``RandomSampler`` for a parameter the sampler did not propose, with a warning.

    Optuna calls ``sample_independent`` for a parameter outside the relative search space: one
    outside the sampler's fixed space, or suggested with another distribution than declared.
    A random value keeps the study going, but the search does not steer that parameter, so the
    user is told: on every such draw, or with ``once`` only on the first per parameter name (a
    sampler called per trial would otherwise repeat one warning for the whole study).
    """

    def __init__(
        self,
        *,
        sampler: str,
        distributions: Mapping[str, BaseDistribution],
        seed: int,
        once: bool = False,
    ) -> None:
        self._sampler = sampler
        self._names = frozenset(distributions)
        self._random = RandomSampler(seed=seed)
        self._once = once
        self._warned: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_warned"] = set()  # a copy in another process warns again there
        return state

    def reseed_rng(self) -> None:
        self._random.reseed_rng()

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        if not (self._once and param_name in self._warned):
            self._warned.add(param_name)
            where = (
                "does not match the search space it was built with"
                if param_name in self._names
                else "is outside the search space it was built with"
            )
            _LOG.warning(
                f"{self._sampler}: parameter {param_name!r} ({param_distribution!r}) {where}; "
                "sampled at random"
            )
        return self._random.sample_independent(study, trial, param_name, param_distribution)
