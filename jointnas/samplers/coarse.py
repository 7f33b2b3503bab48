"""JointNAS's constrained coarse search as an Optuna sampler.

JointNAS searches in two stages. The coarse stage, this module, trains a handful of quasi-random
candidates that satisfy the resource limit, fits an accuracy predictor on them, and from then
on trains the candidate the predictor ranks best in a large quasi-random pool of feasible
candidates; the predictor is refitted as measurements arrive. Every pool member is checked
against the cheap constraint *before* ranking, so no training is ever spent on a candidate that
breaks the limit.

``CoarseSampler`` does this for any fixed Optuna search space (int, float, log, step,
categorical) and any regressor with ``fit(X, y)``/``predict(X)`` on the ``Encoder`` features.

Design rules, each there so that several workers and a resumed study behave like one process:

* Everything random is seeded by ``(seed, trial.number, stream)``: a trial number always gets
  the same proposal, whichever worker asks and whenever, given the same study contents.
* The model is a pure function of the storage: it is fitted on the first ``m`` usable completed
  trials in completion order, ``m`` following the refit schedule. The in-memory model is only a
  cache keyed by those trials, so a fresh process refits exactly the same model.
* A proposal is written to the trial (``coarse:proposal``) before ``sample_relative`` returns,
  so other workers see it while the trial is still running and never propose it again.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial
from scipy.stats import qmc

from jointnas.errors import InfeasibleConstraintError
from jointnas.samplers.coarse_trials import (
    PROPOSAL_ATTR,
    Taken,
    held_candidates,
    training_set,
    valid_subset,
)
from jointnas.samplers.support import (
    RandomFallback,
    check_int,
    check_single_objective,
    fresh_seed,
    is_feasible,
    predict_rows,
)
from jointnas.spaces.encoding import Encoder, Params

SOURCE_ATTR = "coarse:source"
PREDICTED_ATTR = "coarse:predicted"

# Independent random streams per trial, so that e.g. the exploration coin never shifts the pool.
_STARTUP_STREAM, _POOL_STREAM, _EXPLORE_STREAM = 1, 2, 3
_FIRST_CHUNK = 256  # first Sobol draw; later draws double the total (balance properties)

_logger = optuna.logging.get_logger(__name__)
_SINGLE = "its predictor ranks candidates by one value"


class _SharedScan:
    """Feasible points of the one scrambled Sobol sequence that all startup trials share.

    Startup trial ``n`` takes the ``n``-th feasible point, so the startup set is a prefix of one
    low-discrepancy sequence restricted to the feasible region, and concurrent workers (different
    trial numbers) never collide. Derived from the seed alone, hence safe to cache.
    """

    def __init__(self, engine: qmc.Sobol) -> None:
        self.engine = engine
        self.tried = 0
        self.feasible: list[Params] = []


class CoarseSampler(BaseSampler):
    """Predictor-ranked proposals from a feasible quasi-random pool (JointNAS's coarse search).

    Args:
        search_space: the fixed space, name -> Optuna distribution. Proposals cover all of it;
            a trial uses only the parameters it asks for.
        constraint: cheap pre-evaluation function ``params -> values``, feasible when every
            value is <= 0 (Optuna's convention). ``None``: everything is feasible.
        predictor: any object with ``fit(X, y)`` and ``predict(X)`` on rows of
            ``Encoder(search_space).encode(...)``; larger predictions are better (the sampler
            negates the objective of a minimising study). Default: a seeded
            ``XGBoostPredictor`` on ``DistributionSpace(search_space)``.
        n_startup_trials: usable completed trials needed before the predictor takes over
            (raised to the predictor's ``min_points`` where it has one).
        pool_size: feasible candidates ranked per proposal, in one ``predict`` call.
        refit_interval: refit after this many newly completed trials (fitting can cost more
            than ranking, e.g. the neural predictor).
        exploration: probability of proposing a random pool member instead of the best, so the
            search keeps sampling where the predictor is wrong.
        seed: makes every proposal a function of ``(seed, trial.number)`` and the study.
        max_tries: cap on candidates drawn per rejection loop; a constraint no candidate in
            ``max_tries`` satisfies raises ``InfeasibleConstraintError``.
    """

    def __init__(
        self,
        *,
        search_space: Mapping[str, BaseDistribution],
        constraint: Callable[[dict[str, Any]], Sequence[float]] | None = None,
        predictor: object | None = None,
        n_startup_trials: int = 10,
        pool_size: int = 2000,
        refit_interval: int = 1,
        exploration: float = 0.1,
        seed: int | None = None,
        max_tries: int = 10_000,
    ) -> None:
        if not isinstance(search_space, Mapping):
            raise TypeError(
                f"search_space must be a mapping name -> distribution, got "
                f"{type(search_space).__name__}"
            )
        try:
            self._encoder = Encoder(search_space)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"search_space: {exc}") from None
        if constraint is not None and not callable(constraint):
            raise TypeError("constraint must be None or a callable params -> sequence of floats")
        if predictor is not None and not (
            callable(getattr(predictor, "fit", None))
            and callable(getattr(predictor, "predict", None))
        ):
            raise TypeError(
                f"predictor must have fit(X, y) and predict(X) methods, got "
                f"{type(predictor).__name__}"
            )
        self._n_startup_trials = check_int("n_startup_trials", n_startup_trials, 1)
        self._pool_size = check_int("pool_size", pool_size, 1)
        self._refit_interval = check_int("refit_interval", refit_interval, 1)
        self._max_tries = check_int("max_tries", max_tries, 1)
        if self._pool_size > self._max_tries:
            raise ValueError(
                f"pool_size ({pool_size}) must be <= max_tries ({max_tries}): the pool is drawn "
                "within max_tries candidates"
            )
        if isinstance(exploration, bool) or not isinstance(exploration, (int, float)):
            raise TypeError(f"exploration must be a float, got {type(exploration).__name__}")
        if not 0.0 <= exploration <= 1.0:
            raise ValueError(f"exploration must be in [0, 1], got {exploration}")
        if seed is not None:
            seed = check_int("seed", seed, 0)
        self._exploration = float(exploration)
        self._constraint = constraint
        self._seed = fresh_seed() if seed is None else seed
        if predictor is None:
            from jointnas.predictors.xgb import XGBoostPredictor
            from jointnas.spaces.base import DistributionSpace

            predictor = XGBoostPredictor(
                space=DistributionSpace(self._encoder.distributions), seed=self._seed % 2**31
            )
        self._predictor: Any = predictor
        # A predictor that cannot fit on fewer than `min_points` rows would fail mid-study.
        self._n_startup = max(self._n_startup_trials, int(getattr(predictor, "min_points", 1)))
        self._fallback = RandomFallback(  # RandomSampler's legacy seeding is 32-bit
            sampler="CoarseSampler",
            distributions=self._encoder.distributions,
            seed=self._seed % 2**32,
            once=True,
        )
        self._init_caches()

    # -- state that is never persisted: locks and caches derived from seed and storage ---------
    def _init_caches(self) -> None:
        # One lock around propose + record: threads of one process must see each other's
        # proposals, and the predictor object is shared.
        self._lock = threading.RLock()
        self._shared: _SharedScan | None = None
        self._fitted_on: tuple[int, ...] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_lock", "_shared", "_fitted_on"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_caches()

    def reseed_rng(self) -> None:
        with self._lock:
            self._seed = fresh_seed()
            self._shared = None
            self._fallback.reseed_rng()

    # -- Optuna's sampler interface --------------------------------------------------------------
    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        check_single_objective(study, "CoarseSampler", _SINGLE)
        # A copy: wrappers such as PartialFixedSampler delete their fixed names from it.
        return dict(self._encoder.distributions)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        check_single_objective(study, "CoarseSampler", _SINGLE)
        if not any(name in self._encoder.distributions for name in search_space):
            return {}
        with self._lock:
            proposal = self._propose(study, trial)
        if proposal is None:
            return {}
        return {name: proposal[name] for name in search_space if name in proposal}

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        check_single_objective(study, "CoarseSampler", _SINGLE)
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    # -- proposal ---------------------------------------------------------------------------------
    def _propose(self, study: Study, trial: FrozenTrial) -> Params | None:
        """The whole-space candidate for ``trial``, recorded on it; None when all is fixed."""
        fixed = valid_subset(self._encoder, trial.system_attrs.get("fixed_params", {}))
        if len(fixed) == len(self._encoder.names):
            return None  # an enqueued trial: Optuna uses its fixed values, nothing to choose
        trials = study.get_trials(deepcopy=False)
        taken = held_candidates(self._encoder, trials, exclude=trial._trial_id)
        training = training_set(self._encoder, trials)
        predicted: float | None = None
        if len(training) < self._n_startup:
            source, params = "sobol", self._startup(trial.number, fixed, taken)
        else:
            coin = np.random.default_rng([self._seed, trial.number, _EXPLORE_STREAM])
            pool = self._draw(trial.number, _POOL_STREAM, fixed, taken, self._pool_size)
            if coin.random() < self._exploration:
                source, params = "explore", pool[int(coin.integers(len(pool)))]
            else:
                sign = -1.0 if study.direction == StudyDirection.MINIMIZE else 1.0
                self._fit(training, sign)
                scores = self._predict(pool)
                best = int(np.argmax(scores))
                source, params, predicted = "predicted", pool[best], sign * float(scores[best])
        storage = study._storage
        storage.set_trial_system_attr(trial._trial_id, SOURCE_ATTR, source)
        storage.set_trial_system_attr(trial._trial_id, PROPOSAL_ATTR, dict(params))
        if predicted is not None and math.isfinite(predicted):
            storage.set_trial_system_attr(trial._trial_id, PREDICTED_ATTR, predicted)
        return params

    def _startup(self, number: int, fixed: Params, taken: Taken) -> Params:
        """Trial ``number``'s point of the shared feasible Sobol prefix; its own seeded
        sequence where that point is taken, out of reach within max_tries, or where the trial
        fixes some parameters (then the shared prefix does not apply)."""
        if not fixed:
            params = self._shared_point(number)
            if params is not None and params not in taken:
                return params
        return self._draw(number, _STARTUP_STREAM, fixed, taken, 1)[0]

    def _shared_point(self, number: int) -> Params | None:
        if self._shared is None:
            self._shared = _SharedScan(_sobol(len(self._encoder.names), self._seed))
        scan = self._shared
        while len(scan.feasible) <= number and scan.tried < self._max_tries:
            size = _chunk_size(scan.tried, self._max_tries - scan.tried, _FIRST_CHUNK)
            scan.feasible += [p for p in self._candidates(scan.engine, size, {}) if self._ok(p)]
            scan.tried += size
        if not scan.feasible:
            raise InfeasibleConstraintError(_tightness(scan.tried, {}))
        return scan.feasible[number] if number < len(scan.feasible) else None

    def _draw(
        self, number: int, stream: int, fixed: Params, taken: Taken, want: int
    ) -> list[Params]:
        """Up to ``want`` distinct feasible candidates no other trial holds, from the seeded
        Sobol sequence of ``(seed, number, stream)``, within ``max_tries`` draws."""
        engine = _sobol(len(self._encoder.names), [self._seed, number, stream])
        first = max(_FIRST_CHUNK, 1 << max(want - 1, 0).bit_length())
        found: list[Params] = []
        seen = Taken()
        repeats: list[Params] = []
        tried = n_feasible = 0
        while len(found) < want and tried < self._max_tries:
            size = _chunk_size(tried, self._max_tries - tried, first)
            for params in self._candidates(engine, size, fixed):
                if len(found) >= want or not self._ok(params):
                    continue
                n_feasible += 1
                if params in seen:
                    continue
                seen.add(params)
                (repeats if params in taken else found).append(params)
            tried += size
        if found:
            if len(found) < want:
                _logger.debug(f"trial {number}: pool of {len(found)} (asked {want})")
            return found
        if not n_feasible:
            raise InfeasibleConstraintError(_tightness(tried, fixed))
        # A small discrete space can be used up; repeating beats stopping the study.
        _logger.warning(
            f"trial {number}: all {len(repeats)} distinct feasible candidates seen in {tried} "
            "draws are already held by running, waiting or completed trials; proposing one again"
        )
        return repeats[:want]

    def _candidates(self, engine: qmc.Sobol, size: int, fixed: Params) -> list[Params]:
        rows = self._encoder.from_unit(engine.random(size))
        if fixed:
            for row in rows:
                row.update(fixed)
        return rows

    def _ok(self, params: Params) -> bool:
        if self._constraint is None:
            return True
        values = self._constraint(params)
        try:
            return is_feasible(values)
        except TypeError:
            raise TypeError(
                f"constraint must return a sequence of floats, got {type(values).__name__}"
            ) from None

    # -- predictor --------------------------------------------------------------------------------
    def _fit(self, training: Sequence[tuple[int, Params, float]], sign: float) -> None:
        """Fit on the trials the refit schedule says, unless the cached model is that fit."""
        n0, k = self._n_startup, len(training)
        m = n0 + (k - n0) // self._refit_interval * self._refit_interval
        used = training[:m]
        key = tuple(number for number, _, _ in used)
        if key == self._fitted_on:
            return
        X = self._encoder.encode([params for _, params, _ in used])
        y = sign * np.array([value for _, _, value in used], dtype=float)
        self._fitted_on = None  # a failing fit must not leave a stale key behind
        self._predictor.fit(X, y)
        self._fitted_on = key

    def _predict(self, pool: Sequence[Params]) -> np.ndarray:
        scores = predict_rows(self._predictor, self._encoder.encode(pool))
        return np.where(np.isfinite(scores), scores, -np.inf)


def _sobol(d: int, seed: Any) -> qmc.Sobol:
    rng = np.random.default_rng(seed)
    try:
        return qmc.Sobol(d, scramble=True, rng=rng)
    except TypeError:  # scipy < 1.15 names it `seed`
        return qmc.Sobol(d, scramble=True, seed=rng)


def _chunk_size(generated: int, budget: int, first: int) -> int:
    """Next Sobol draw: a power of two first, then as many as drawn so far, so the totals stay
    powers of two (Sobol's balance) until the budget cuts the last draw short."""
    if generated == 0:
        return 1 << (min(first, budget).bit_length() - 1)
    return min(generated, budget)


def _tightness(tried: int, fixed: Params) -> str:
    given = f" together with the trial's fixed params {fixed}" if fixed else ""
    return (
        f"0 of {tried} quasi-random candidates satisfied the constraint{given}: the feasible "
        f"region is smaller than 1/{tried} of the search space; loosen the constraint (or raise "
        "max_tries)"
    )
