"""CoarseSampler's settings: checked once, with errors that name the argument, and the
surrogate they describe. Kept apart from the sampler so its module reads as the search."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from optuna.distributions import BaseDistribution

from jointnas.samplers.acquisition import ACQUISITIONS, Search
from jointnas.samplers.gp import MixedGP
from jointnas.samplers.support import check_int
from jointnas.samplers.surrogate import (
    TARGETS,
    Ensemble,
    GaussianProcess,
    Mixture,
    Single,
    TreeRegressor,
)
from jointnas.spaces.encoding import Encoder

SURROGATES = ("xgboost", "gp", "gp+xgboost", "gp-onehot", "neural")
#: what a running trial's proposal counts as in the surrogate (``True`` is "mean")
FANTASIES = ("qei", "mean", "worst", "off")


@dataclass(frozen=True)
class Settings:
    search_space: dict[str, BaseDistribution] | None
    constraint: Callable[[dict[str, Any]], Any] | None
    constraint_batch: Callable[..., Any] | None
    surrogate: str | Callable[[int], Any]
    predictor: Any
    ensemble_size: int
    acquisition: str
    target: str
    local_search: bool
    n_startup_trials: int | None
    pool_size: int
    refit_interval: int
    refit_growth: float
    exploration: float
    fantasize: str  # one of FANTASIES (coarse_model.py)
    seed: int | None
    max_tries: int
    min_points: int = 1
    search: Search = field(default_factory=Search)


def _check_fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def check_settings(**kw: Any) -> Settings:
    """Validate ``CoarseSampler``'s keyword arguments (see its docstring)."""
    space = kw["search_space"]
    if space is not None:
        if not isinstance(space, Mapping):
            raise TypeError(
                f"search_space must be None or a mapping name -> distribution, got "
                f"{type(space).__name__}"
            )
        try:
            Encoder(space)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"search_space: {exc}") from None
        space = dict(space)
    for name in ("constraint", "constraint_batch"):
        if kw[name] is not None and not callable(kw[name]):
            raise TypeError(f"{name} must be None or a callable")
    if kw["constraint_batch"] is not None and space is None:
        raise ValueError(
            "constraint_batch reads encoded rows of a fixed space: give search_space too "
            "(or pass constraint=, which works on params dicts)"
        )
    predictor = kw["predictor"]
    if predictor is not None and not (
        callable(getattr(predictor, "fit", None)) and callable(getattr(predictor, "predict", None))
    ):
        raise TypeError(
            f"predictor must have fit(X, y) and predict(X) methods, got {type(predictor).__name__}"
        )
    surrogate = kw["surrogate"]
    if not callable(surrogate):
        _check_choice("surrogate", surrogate, SURROGATES)
    n_startup = kw["n_startup_trials"]
    if n_startup is not None:
        n_startup = check_int("n_startup_trials", n_startup, 1)
    pool_size = check_int("pool_size", kw["pool_size"], 1)
    max_tries = check_int("max_tries", kw["max_tries"], 1)
    if pool_size > max_tries:
        raise ValueError(
            f"pool_size ({pool_size}) must be <= max_tries ({max_tries}): the pool is drawn "
            "within max_tries candidates"
        )
    if not isinstance(kw["local_search"], bool):
        raise TypeError("local_search must be True or False")
    fantasize = kw["fantasize"]
    if isinstance(fantasize, bool):
        fantasize = "mean" if fantasize else "off"
    _check_choice("fantasize", fantasize, FANTASIES)
    seed = kw["seed"]
    if seed is not None:
        seed = check_int("seed", seed, 0)
    return Settings(
        search_space=space,
        constraint=kw["constraint"],
        constraint_batch=kw["constraint_batch"],
        surrogate=surrogate,
        predictor=predictor,
        ensemble_size=check_int("ensemble_size", kw["ensemble_size"], 1),
        acquisition=_check_choice("acquisition", kw["acquisition"], ACQUISITIONS),
        target=_check_choice("target", kw["target"] or _target_for(surrogate), TARGETS),
        local_search=kw["local_search"],
        n_startup_trials=n_startup,
        pool_size=pool_size,
        refit_interval=check_int("refit_interval", kw["refit_interval"], 1),
        refit_growth=_check_fraction("refit_growth", kw["refit_growth"]),
        exploration=_check_fraction("exploration", kw["exploration"]),
        fantasize=fantasize,
        seed=seed,
        max_tries=max_tries,
        # a predictor that cannot fit on fewer than `min_points` rows would fail mid-study
        min_points=_min_points(predictor, surrogate),
    )


def _min_points(predictor: Any, surrogate: Any) -> int:
    """The fewest trials the model can be fitted on: the JointNAS predictors' minimum for a
    user's predictor or the neural ensemble (whose members are JointNAS predictors)."""
    if predictor is None and surrogate == "neural":
        from jointnas.predictors.base import Predictor

        return Predictor.min_points
    return int(getattr(predictor, "min_points", 1))


def _target_for(surrogate: Any) -> str:
    """The target transform that measured best with each surrogate: the GP's Gaussian
    likelihood wants the values' own scale (z-scores; with ranks it fell behind the trees in
    a bbob-mixint probe, 6 functions x 3 seeds), trees want ranks (a heavy tail otherwise
    decides their splits)."""
    return "standard" if surrogate in ("gp", "gp+xgboost", "gp-onehot") else "rank"


def default_surrogate(s: Settings, encoder: Encoder, seed: int) -> Any:
    """The model ``s`` describes: the user's predictor alone, or an ensemble of members."""
    if s.predictor is not None:
        return Single(s.predictor)
    if s.surrogate == "gp":
        return MixedGP(encoder=encoder)
    if s.surrogate == "gp+xgboost":
        trees = default_surrogate(replace(s, surrogate="xgboost"), encoder, seed)
        return Mixture([MixedGP(encoder=encoder), trees])
    if s.surrogate == "gp-onehot":
        return GaussianProcess(seed=seed % 2**31)
    make: Callable[[int], Any]
    if callable(s.surrogate):
        make = s.surrogate
    elif s.surrogate == "neural":
        from jointnas.predictors.neural import NeuralPredictor
        from jointnas.spaces.base import DistributionSpace

        space = DistributionSpace(encoder.distributions)

        def make(member_seed: int) -> Any:
            return NeuralPredictor(space=space, seed=member_seed)

    else:

        def make(member_seed: int) -> Any:
            return TreeRegressor(seed=member_seed)

    return Ensemble(make=make, size=s.ensemble_size, seed=seed % 2**31)


def refit_point(s: Settings, n_startup: int, k: int) -> int:
    """Trials the surrogate is fitted on when ``k`` are usable: the last point of the refit
    schedule (every ``max(refit_interval, refit_growth * trials)`` from ``n_startup``)."""
    m = n_startup
    while True:
        step = max(s.refit_interval, int(s.refit_growth * m))
        if m + step > k:
            return min(m, k)
        m += step
