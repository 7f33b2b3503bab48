"""JointNAS's constrained coarse search as an Optuna sampler, for any study script.

A few quasi-random feasible trials, then a surrogate's mean and spread (``gp.py``,
``surrogate.py``) and expected improvement pick the best of a quasi-random pool, mutations of
the best trials and a short hill-climb (``acquisition.py``). No trial is spent on a candidate
that breaks the cheap known constraint: ``constraint_batch`` filters every candidate before
scoring, a plain ``constraint`` is checked after, best first (``candidates.py``).

``CoarseSampler(seed=0)`` is a drop-in for ``TPESampler``: without ``search_space`` it infers the
space like TPE and GPSampler (the intersection of the completed trials' distributions) and
samples other parameters at random. Design rules, so several workers and a resumed study behave
like one process:

* Everything random is seeded by ``(seed, trial.number, stream)``.
* The model is a pure function of the storage: it is fitted on the first ``m`` usable completed
  trials in completion order, ``m`` following the refit schedule; the running trials'
  recorded proposals change the acquisition (q-EI, or fantasies; ``coarse_model.py``) so
  workers do not all propose the neighbours of one incumbent. The in-memory model is only a
  cache.
* A proposal is written to the trial (``coarse:proposal``) before ``sample_relative`` returns,
  so other workers see it while the trial is still running and never propose it again.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial

from jointnas.samplers import acquisition as acq
from jointnas.samplers.candidates import (
    BatchConstraint,
    Checker,
    FeasibilityGuess,
    feasible_pool,
    sobol,
)
from jointnas.samplers.coarse_model import surrogate
from jointnas.samplers.coarse_setup import Settings, check_settings
from jointnas.samplers.coarse_trials import (
    PROPOSAL_ATTR,
    SpaceState,
    Taken,
    first_free,
    held_candidates,
    pending_candidates,
    training_set,
    valid_subset,
)
from jointnas.samplers.support import (
    RandomFallback,
    check_single_objective,
    fresh_seed,
    one_blas_thread,
)
from jointnas.samplers.surrogate import untransform_target
from jointnas.spaces.encoding import Encoder, Params

SOURCE_ATTR = "coarse:source"
PREDICTED_ATTR = "coarse:predicted"

# Independent random streams per trial, so that e.g. the exploration coin never shifts the pool.
_STARTUP_STREAM, _POOL_STREAM, _EXPLORE_STREAM, _ACQ_STREAM, _RATE_STREAM = 1, 2, 3, 4, 5
_PENDING_STREAM = 6
_SINGLE = "its surrogate ranks candidates by one value"


class CoarseSampler(BaseSampler):
    """Surrogate-guided proposals under a cheap constraint (JointNAS's coarse search).

    Args:
        search_space: name -> Optuna distribution. ``None`` (default): inferred from the
            study like TPE/GPSampler; parameters outside it are sampled at random.
        constraint: cheap pre-evaluation function ``params -> values``, feasible when every
            value is <= 0 (Optuna's convention). ``None``: everything is feasible.
        constraint_batch: the same constraint on a whole batch of encoded rows (``(n, width)``
            of ``Encoder(search_space)`` -> ``(n, m)`` values); needs ``search_space``. Used
            instead of ``constraint`` where given: jointnas spaces pass their vectorised cost.
        surrogate: ``"gp"`` (default: GPSampler's GP, Hamming kernel on categoricals),
            ``"xgboost"`` (bagged trees), ``"gp+xgboost"`` (their mixture), ``"gp-onehot"``,
            ``"neural"`` (a deep ensemble) or a function ``seed -> regressor``.
        predictor: one regressor used as it is (a mean, no spread); overrides ``surrogate``.
        ensemble_size: members of a tree or neural ensemble (each on its own bootstrap
            resample).
        acquisition: ``"ei"`` (expected improvement), ``"thompson"`` or ``"mean"``.
        target: ``"rank"`` (normal scores of the ranks) or ``"standard"`` (z-scores);
            ``None``: what measured best for the surrogate (z-scores for the GP, else ranks).
        local_search: maximise the acquisition also over mutations of the best trials and a
            short hill-climb (else over the quasi-random pool only).
        n_startup_trials: quasi-random trials before the surrogate; ``None``: ``min(d + 1, 10)``
            for ``d`` parameters (raised to a predictor's ``min_points``).
        pool_size: feasible quasi-random candidates per proposal.
        refit_interval, refit_growth: the surrogate is refitted when the trials it was fitted on
            have grown by ``max(refit_interval, refit_growth * trials)``; in between, the last
            fit is reused (at 1,000 trials, a refit every 50).
        exploration: probability of proposing a random pool member instead of the best.
        fantasize: what running trials' proposals do, so parallel workers spread out:
            ``"qei"`` q-batch expected improvement over them (the GP with ``"ei"``; else as
            ``"mean"``), ``"mean"``/``True`` fantasies at their predicted mean (kriging
            believer), ``"worst"`` at the worst value seen (constant liar), ``"off"``/``False``
            nothing.
        seed: makes every proposal a function of ``(seed, trial.number)`` and the study.
        max_tries: cap on quasi-random draws per pool; a constraint none of ``max_tries``
            candidates satisfies raises ``InfeasibleConstraintError``.
    """

    def __init__(
        self,
        *,
        search_space: Mapping[str, BaseDistribution] | None = None,
        constraint: Callable[[dict[str, Any]], Any] | None = None,
        constraint_batch: BatchConstraint | None = None,
        surrogate: str | Callable[[int], Any] = "gp",
        predictor: object | None = None,
        ensemble_size: int = 5,
        acquisition: str = "ei",
        target: str | None = None,
        local_search: bool = True,
        n_startup_trials: int | None = None,
        pool_size: int = 2048,
        refit_interval: int = 1,
        refit_growth: float = 0.05,
        exploration: float = 0.1,
        fantasize: bool | str = "qei",
        seed: int | None = None,
        max_tries: int = 10_000,
    ) -> None:
        args = dict(locals())
        del args["self"]
        self._settings: Settings = check_settings(**args)
        s = self._settings
        self._seed = fresh_seed() if s.seed is None else s.seed
        self._fixed = None if s.search_space is None else SpaceState(s.search_space, self._seed)
        self._intersection = IntersectionSearchSpace(include_pruned=True)
        self._random = RandomSampler(seed=self._seed % 2**32)
        self._fallback = (
            None
            if self._fixed is None
            else RandomFallback(
                sampler="CoarseSampler",
                distributions=self._fixed.encoder.distributions,
                seed=self._seed % 2**32,
                once=True,
            )
        )
        self._init_caches()

    # -- state that is never persisted: locks and caches derived from seed and storage ---------
    def _init_caches(self) -> None:
        # One lock around propose + record: threads of one process must see each other's
        # proposals, and the surrogate is shared.
        self._lock = threading.RLock()
        self._reset_spaces()

    def _reset_spaces(self) -> None:
        """Drop everything derived from the seed (never the lock: Optuna reseeds a sampler
        from each thread of ``optimize(n_jobs=...)`` while others may be proposing)."""
        self._spaces: dict[tuple[tuple[str, str], ...], SpaceState] = {}
        if self._fixed is not None:
            self._fixed = SpaceState(self._fixed.encoder.distributions, self._seed)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_lock", "_spaces"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_caches()

    def reseed_rng(self) -> None:
        with self._lock:
            self._seed = fresh_seed()
            self._reset_spaces()
            self._random.reseed_rng()
            if self._fallback is not None:
                self._fallback.reseed_rng()

    # -- Optuna's sampler interface --------------------------------------------------------------
    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        check_single_objective(study, "CoarseSampler", _SINGLE)
        if self._fixed is not None:
            # A copy: wrappers such as PartialFixedSampler delete their fixed names from it.
            return dict(self._fixed.encoder.distributions)
        inferred = self._intersection.calculate(study)
        return {n: d for n, d in inferred.items() if not d.single()}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        check_single_objective(study, "CoarseSampler", _SINGLE)
        if not search_space:
            return {}
        with self._lock:
            space = self._fixed or self._space_of(search_space)
            if not any(name in space.encoder.distributions for name in search_space):
                return {}
            with one_blas_thread():
                proposal = self._propose(study, trial, space)
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
        if self._fallback is None:  # inferred space: like TPE, what is outside it is random
            return self._random.sample_independent(study, trial, param_name, param_distribution)
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    def _space_of(self, distributions: Mapping[str, BaseDistribution]) -> SpaceState:
        key = tuple((n, repr(d)) for n, d in sorted(distributions.items()))
        if key not in self._spaces:
            self._spaces[key] = SpaceState(distributions, self._seed)
        return self._spaces[key]

    # -- proposal ---------------------------------------------------------------------------------
    def _propose(self, study: Study, trial: FrozenTrial, space: SpaceState) -> Params | None:
        """The whole-space candidate for ``trial``, recorded on it; None when all is fixed."""
        s, enc = self._settings, space.encoder
        fixed = valid_subset(enc, trial.system_attrs.get("fixed_params", {}))
        if len(fixed) == len(enc.names):
            return None  # an enqueued trial: Optuna uses its fixed values, nothing to choose
        checker = Checker(
            enc, constraint=s.constraint, constraint_batch=s.constraint_batch, fixed=fixed
        )
        trials = study.get_trials(deepcopy=False)
        space.forget_other_studies(study)
        taken = held_candidates(enc, trials, exclude=trial._trial_id, memo=space.memo)
        training = training_set(enc, trials, space.memo)
        n_startup = self._n_startup(enc)
        predicted: float | None = None
        if len(training) < n_startup:
            source, params = "sobol", self._startup(space, trial.number, checker, taken)
        else:
            coin = np.random.default_rng([self._seed, trial.number, _EXPLORE_STREAM])
            engine = sobol(len(enc.names), [self._seed, trial.number, _POOL_STREAM])
            if checker.lazy:  # unchecked: scored first, checked in acquisition order
                pool = checker.draw(engine, self._guess(space).pool_size(s.pool_size, s.max_tries))
            else:
                pool = feasible_pool(checker, engine, s.pool_size, s.max_tries)
            if coin.random() < s.exploration:
                source = "explore"
                params = first_free(enc, pool[coin.permutation(len(pool))], taken, checker)
                if params is None:  # a lazy pool with no feasible row: draw until feasible
                    pool = feasible_pool(checker, engine, s.pool_size, s.max_tries)
                    params = first_free(enc, pool, taken)
            else:
                sign = -1.0 if study.direction == StudyDirection.MINIMIZE else 1.0
                pending = (
                    pending_candidates(enc, trials, exclude=trial._trial_id)
                    if s.fantasize != "off"
                    else []
                )
                params, predicted = self._acquire(
                    space, trial.number, training, pending, sign, n_startup, pool, checker, taken
                )
                source = "predicted"
        storage = study._storage
        storage.set_trial_system_attr(trial._trial_id, SOURCE_ATTR, source)
        storage.set_trial_system_attr(trial._trial_id, PROPOSAL_ATTR, dict(params))
        if predicted is not None and np.isfinite(predicted):
            storage.set_trial_system_attr(trial._trial_id, PREDICTED_ATTR, predicted)
        return params

    def _guess(self, space: SpaceState) -> FeasibilityGuess:
        """The lazily checked constraint, probed once per space (``FeasibilityGuess.probe``)."""
        if space.guess is None:
            engine = sobol(len(space.encoder.names), [self._seed, _RATE_STREAM])
            checker = Checker(space.encoder, constraint=self._settings.constraint)
            space.guess = FeasibilityGuess.probe(checker, engine)
        return space.guess

    def _n_startup(self, enc: Encoder) -> int:
        s = self._settings
        n = min(len(enc.names) + 1, 10) if s.n_startup_trials is None else s.n_startup_trials
        return max(n, s.min_points)

    def _startup(self, space: SpaceState, number: int, checker: Checker, taken: Taken) -> Params:
        """Trial ``number``'s point of the shared feasible Sobol prefix; its own seeded
        sequence where that point is taken, out of reach within max_tries, or where the trial
        fixes some parameters (then the shared prefix does not apply)."""
        max_tries = self._settings.max_tries
        if not checker.fixed:
            params = space.scan_point(number, checker, max_tries)
            if params is not None and params not in taken:
                return params
        engine = sobol(len(space.encoder.names), [self._seed, number, _STARTUP_STREAM])
        pool = feasible_pool(checker, engine, 64, max_tries)
        return first_free(space.encoder, pool, taken)

    def _acquire(
        self,
        space: SpaceState,
        number: int,
        training: list[tuple[int, Params, float]],
        pending: list[tuple[int, Params]],
        sign: float,
        n_startup: int,
        pool: np.ndarray,
        checker: Checker,
        taken: Taken,
    ) -> tuple[Params, float]:
        s, enc = self._settings, space.encoder
        pending_rng = np.random.default_rng([self._seed, number, _PENDING_STREAM])
        fitted = surrogate(s, space, self._seed, training, pending, sign, n_startup, pending_rng)
        model, X, y, z = fitted.model, fitted.X, fitted.y, fitted.z
        rng = np.random.default_rng([self._seed, number, _ACQ_STREAM])
        best = float(z.max())

        def value(C: np.ndarray) -> np.ndarray:
            if fitted.batch is not None:  # q-EI over the running trials' proposals
                return fitted.batch(C)
            return acq.score(model, C, best, s.acquisition, rng)

        genes = space.genes
        if checker.fixed:
            frozen = np.isin(np.arange(genes.count), [enc.names.index(n) for n in checker.fixed])
            genes = dataclasses.replace(genes, mutable=genes.mutable & ~frozen)
        incumbents = X[np.argsort(-y, kind="stable")[: s.search.incumbents]]
        search = s.search if s.local_search else acq.Search(0, 0, 0, 0, 0)
        lazy = checker.lazy
        ranked, _ = acq.maximise(
            value,
            pool,
            incumbents,
            genes=genes,
            rng=rng,
            feasible=checker.agrees if lazy else checker,
            search=search,
            starts=(lambda R, k: R[checker.in_order(R, k)]) if lazy else None,
        )
        params = first_free(enc, ranked, taken, checker)
        if params is None:  # nothing looked at is feasible: a pool drawn until it is
            engine = sobol(len(enc.names), [self._seed, number, _POOL_STREAM])
            pool = feasible_pool(checker, engine, s.pool_size, s.max_tries)
            ranked, _ = acq.maximise(
                value, pool, incumbents, genes=genes, rng=rng, feasible=checker, search=search
            )
            params = first_free(enc, ranked, taken)
            assert params is not None
        mean_z = float(model.mean_std(enc.encode([params]))[0][0])
        # the objective value at the predicted rank (or z-score) of the proposal
        return params, sign * untransform_target(mean_z, y, s.target)
