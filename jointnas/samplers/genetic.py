"""FBNetV3's adaptive genetic fine search as an Optuna sampler.

FBNetV3 (Dai et al., 2020) ends its search with an *adaptive genetic* stage: it starts from the
best candidates of the coarse stage, breeds children by mutation and crossover, keeps the best of
parents and children, and, once an accuracy predictor exists, lets the predictor choose which of
many children are worth training. ``AdaptiveGeneticSampler`` is that stage for any fixed Optuna
search space, so it runs inside a plain study, on any storage, beside the other samplers.

Design points, each forced by running as an Optuna sampler:

* **Generations live in the storage.** Optuna's ``BaseGASampler`` tags each trial with its
  generation (a trial system attr) and caches each generation's parents (a study system attr).
  The adaptive state (mutation strength, success statistics) and the predictor's ranked proposals
  are stored beside them, keyed by generation, so a study resumed by another process, or served to
  parallel workers, continues from exactly the same state; nothing that shapes the search is kept
  only in memory.
* **No hidden RNG state.** The draws for trial ``n`` of generation ``g`` come from a Generator
  seeded with ``(seed, g, n)``; the same seed gives the same proposals, in one process or after a
  resume, and parallel workers never share draws.
* **Operators come from the distributions.** Genes are the [0, 1]-scaled encoding of
  ``jointnas.spaces.encoding.Encoder`` (log scale where the distribution is log), so one Gaussian
  step size means the same thing for a learning rate and a channel width, and decoding snaps
  children onto int/step grids. Categoricals are resampled instead, since they have no order.
* **Constraints are checked before training.** Every proposal satisfies the cheap constraint
  (capped rejection), as in FBNetV3, where a candidate over the resource limit is never trained.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseGASampler, RandomSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from jointnas.errors import InfeasibleConstraintError
from jointnas.samplers.feasible import is_feasible
from jointnas.spaces.encoding import Encoder, Params

Constraint = Callable[[Mapping[str, Any]], Sequence[float]]

_LOG = optuna.logging.get_logger(__name__)
_LIVE = (TrialState.RUNNING, TrialState.WAITING, TrialState.COMPLETE)


@dataclass(frozen=True)
class _Member:
    """An evaluated candidate that can be a parent: its params, encoded row and loss (the
    objective turned into lower-is-better)."""

    trial_id: int
    number: int
    params: Params
    row: np.ndarray
    value: float
    loss: float


@dataclass
class _Child:
    """A proposal and where it came from (kept on the trial, for the success rule and for
    anyone reading the study afterwards)."""

    params: Params
    origin: str
    parents: tuple[int, ...] = ()
    parent_value: float | None = None
    predicted: float | None = None


@dataclass
class _View:
    """One consistent read of the storage for one proposal: this study's trials (all states)
    and the COMPLETE trials of the ``initial_from`` study."""

    study: Study
    trials: list[FrozenTrial]
    source: list[FrozenTrial]
    sign: float  # +1 when minimising, -1 when maximising: loss = sign * value
    attrs: dict[str, Any] | None = None  # the study's system attrs, read once, kept in step


def _reflect(x: float) -> float:
    """Fold a value back into [0, 1] (reflection keeps a Gaussian step from piling mass on the
    bounds, as clipping would)."""
    x = abs(x) % 2.0
    return 2.0 - x if x > 1.0 else x


def _grid_step(dist: BaseDistribution, value: Any, z: float) -> Any:
    """One grid point from ``value`` in the direction of ``z`` (the other way at a bound).

    Used when a Gaussian step on a discrete gene snapped back to the parent's value, so that a
    mutated gene really changes even when sigma is small against the grid.
    """
    direction = 1 if z >= 0 else -1
    if isinstance(dist, IntDistribution):
        for d in (direction, -direction):
            new = value + d * dist.step
            if dist.low <= new <= dist.high:
                return int(new)
        return value
    if isinstance(dist, FloatDistribution) and dist.step is not None:
        k = round((value - dist.low) / dist.step)
        k_max = round((dist.high - dist.low) / dist.step)
        for d in (direction, -direction):
            if 0 <= k + d <= k_max:
                return float(min(dist.low + (k + d) * dist.step, dist.high))
    return value


class AdaptiveGeneticSampler(BaseGASampler):
    """FBNetV3's adaptive genetic search over a fixed search space, under a cheap constraint.

    Generation 0 is the initial population: the ``population_size`` best completed trials that
    predate the genetic search (this study's own trials without a generation tag, or those of the
    study named ``initial_from`` in the same storage), topped up with feasible random candidates
    when there are fewer; only the top-up is proposed, the seeds are already evaluated. Each later
    generation ``g`` breeds ``population_size`` children from the parents ``P_g``, the best
    ``population_size`` of ``P_{g-1}`` and generation ``g-1`` (elitist, so a good seed survives
    until something beats it). A child is a uniform crossover of two binary-tournament winners
    (with probability ``crossover_prob``, else a copy of one) followed by mutation: each gene
    mutates with probability ``mutation_prob`` (at least one does), numeric genes by a Gaussian
    step of std ``sigma`` on the [0, 1] encoding, categoricals by switching to another choice.

    ``sigma`` adapts by Rechenberg's 1/5th success rule: when more than a fifth of generation
    ``g-1``'s children beat their better parent, the steps were too timid and sigma grows by 1.22;
    when fewer did, it shrinks by 1.22; it stays in [0.01, 0.5]. The per-generation state is in
    the study's system attrs (see ``history``).

    With a ``predictor`` (an object with ``fit(X, y)`` and ``predict(X)`` on encoded matrices, as
    the jointnas predictors have), each generation fits it on every completed trial, breeds
    ``candidates_per_child * population_size`` distinct feasible children, scores them in one
    ``predict`` call and proposes the best-predicted ones: FBNetV3's way of spending trainings
    only on children the predictor likes. If the predictor cannot be fitted yet (too few points:
    it raises ``ValueError``), that generation breeds without it.

    Proposals never repeat a RUNNING, WAITING or COMPLETE trial (nor a trial of the
    ``initial_from`` study) unless the reachable space is exhausted. Single-objective only.
    """

    SIGMA_MIN = 0.01
    SIGMA_MAX = 0.5
    SIGMA_FACTOR = 1.22
    SUCCESS_TARGET = 0.2
    #: consecutive feasible duplicates after which a search for a fresh candidate gives up
    #: (small discrete spaces run out of new candidates; the search must then still end)
    DUPLICATE_LIMIT = 64

    def __init__(
        self,
        *,
        search_space: Mapping[str, BaseDistribution],
        constraint: Constraint | None = None,
        predictor: object | None = None,
        population_size: int = 20,
        initial_from: str | None = None,
        mutation_prob: float | None = None,
        sigma: float = 0.2,
        crossover_prob: float = 0.5,
        candidates_per_child: int = 20,
        seed: int | None = None,
        max_tries: int = 10_000,
    ) -> None:
        if not isinstance(search_space, Mapping) or not search_space:
            raise ValueError("search_space must be a non-empty mapping name -> distribution")
        try:
            self._encoder = Encoder(search_space)
        except TypeError as exc:
            raise ValueError(f"search_space: {exc}") from None
        if constraint is not None and not callable(constraint):
            raise ValueError("constraint must be None or a callable params -> sequence of floats")
        if predictor is not None and not all(
            callable(getattr(predictor, m, None)) for m in ("fit", "predict")
        ):
            raise ValueError("predictor must be None or an object with fit(X, y) and predict(X)")
        if not _is_int(population_size) or population_size < 2:
            raise ValueError(f"population_size must be an int >= 2, got {population_size!r}")
        if initial_from is not None and (not isinstance(initial_from, str) or not initial_from):
            raise ValueError(f"initial_from must be None or a study name, got {initial_from!r}")
        if mutation_prob is None:
            mutation_prob = 1.0 / len(search_space)
        if not _is_real(mutation_prob) or not 0.0 < mutation_prob <= 1.0:
            raise ValueError(f"mutation_prob must be in (0, 1], got {mutation_prob!r}")
        if not _is_real(sigma) or not self.SIGMA_MIN <= sigma <= self.SIGMA_MAX:
            raise ValueError(
                f"sigma must be in [{self.SIGMA_MIN}, {self.SIGMA_MAX}] (a step on the [0, 1] "
                f"encoding), got {sigma!r}"
            )
        if not _is_real(crossover_prob) or not 0.0 <= crossover_prob <= 1.0:
            raise ValueError(f"crossover_prob must be in [0, 1], got {crossover_prob!r}")
        if not _is_int(candidates_per_child) or candidates_per_child < 1:
            raise ValueError(
                f"candidates_per_child must be an int >= 1, got {candidates_per_child!r}"
            )
        if seed is not None and (not _is_int(seed) or seed < 0):
            raise ValueError(f"seed must be None or an int >= 0, got {seed!r}")
        if not _is_int(max_tries) or max_tries < 1:
            raise ValueError(f"max_tries must be an int >= 1, got {max_tries!r}")
        super().__init__(population_size=int(population_size))

        self._constraint = constraint
        self._predictor: Any = predictor
        self._initial_from = initial_from
        self._mutation_prob = float(mutation_prob)
        self._sigma0 = float(sigma)
        self._crossover_prob = float(crossover_prob)
        self._candidates_per_child = int(candidates_per_child)
        self._max_tries = int(max_tries)
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0]) >> 1
        self._seed = int(seed)
        fallback_seed = int(np.random.SeedSequence([self._seed, 2]).generate_state(1)[0])
        self._fallback = RandomSampler(seed=fallback_seed)

        enc = self._encoder
        self._names = list(enc.names)
        self._dists = dict(enc.distributions)
        self._columns = {n: np.flatnonzero(enc.feature_mask([n])) for n in self._names}
        self._mutable = np.array([_size_above_one(self._dists[n]) for n in self._names])
        prefix = self._get_generation_key().rsplit(":", 1)[0]
        self._state_prefix = f"{prefix}:state:"
        self._proposals_prefix = f"{prefix}:proposals:"
        self._seeds_key = f"{prefix}:seeds"
        self._child_key = f"{prefix}:child"

    # -- Optuna sampler API -----------------------------------------------------------------
    def reseed_rng(self) -> None:
        """Reseed only the fallback for parameters outside the space.

        Optuna calls this per worker thread so that copies of a sampler do not repeat draws; the
        genetic draws are keyed by trial number and never repeat, and keeping their seed keeps a
        seeded study reproducible.
        """
        self._fallback.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return dict(self._dists)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """Propose the whole candidate jointly (the constraint needs every parameter) and return
        the part in ``search_space`` (all of it, unless e.g. PartialFixedSampler fixes some)."""
        _check_single_objective(study)
        if not search_space:
            return {}
        for name, dist in search_space.items():
            if self._dists.get(name) != dist:
                raise ValueError(
                    f"parameter {name!r} with {dist!r} is not in the sampler's search_space; "
                    "build AdaptiveGeneticSampler with the space the objective suggests"
                )
        stored = trial.system_attrs.get(self._child_key)
        if stored is None:  # the usual path; a stored proposal makes repeated calls idempotent
            view = self._view(study)
            generation = self._trial_generation(view, trial)
            child = self._propose(view, trial, generation)
            stored = {
                "params": child.params,
                "origin": child.origin,
                "parents": list(child.parents),
                "parent_value": child.parent_value,
                "predicted": child.predicted,
                "generation": generation,
            }
            study._storage.set_trial_system_attr(trial._trial_id, self._child_key, stored)
        params = self._encoder.validate(stored["params"])
        return {name: params[name] for name in search_space}

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        _check_single_objective(study)
        _LOG.warning(
            f"parameter {param_name!r} ({param_distribution!r}) is not one the genetic search "
            "proposed (outside its search_space, or a changed distribution); sampled at random"
        )
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    # -- BaseGASampler API ------------------------------------------------------------------
    def get_trial_generation(self, study: Study, trial: FrozenTrial) -> int:
        """Generation of ``trial``, tagged on first use as in ``BaseGASampler``, except that
        generation 0 only needs the random top-up of the initial population (the seeds are
        already evaluated), and is skipped when the seeds fill it."""
        return self._trial_generation(self._view(study), trial)

    def select_parent(self, study: Study, generation: int) -> list[FrozenTrial]:
        """The best ``population_size`` of the previous parents and the previous generation."""
        return self._select_parent(self._view(study), generation)

    def get_parent_population(self, study: Study, generation: int) -> list[FrozenTrial]:
        """Parents of ``generation``, cached in the study like ``BaseGASampler`` does; resolved
        against the ``initial_from`` study too, since seeds may live there."""
        return self._parent_population(self._view(study), generation)

    # -- public helpers ---------------------------------------------------------------------
    def history(self, study: Study) -> list[dict[str, Any]]:
        """The stored per-generation state, oldest first: ``generation``, ``sigma`` (used to
        breed it), ``success_rate``/``children``/``successes`` (of the generation before, which
        set sigma), ``parents`` and ``best_value`` (of its parent population; for generation 0,
        of the seeds)."""
        attrs = study._storage.get_study_system_attrs(study._study_id)
        states = [v for k, v in attrs.items() if k.startswith(self._state_prefix)]
        return sorted(states, key=lambda s: s["generation"])

    # -- storage reads ----------------------------------------------------------------------
    def _view(self, study: Study) -> _View:
        _check_single_objective(study)
        sign = 1.0 if study.direction == StudyDirection.MINIMIZE else -1.0
        trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
        source: list[FrozenTrial] = []
        if self._initial_from is not None and self._initial_from != study.study_name:
            storage = study._storage
            try:
                source_id = storage.get_study_id_from_name(self._initial_from)
            except KeyError:
                raise ValueError(
                    f"initial_from={self._initial_from!r}: no such study in this storage"
                ) from None
            directions = storage.get_study_directions(source_id)
            if directions != [study.direction]:
                raise ValueError(
                    f"initial_from={self._initial_from!r} has directions {directions}, this "
                    f"study {study.direction}; their values cannot be ranked together"
                )
            source = storage.get_all_trials(
                source_id, deepcopy=False, states=(TrialState.COMPLETE,)
            )
        return _View(study, trials, source, sign)

    def _study_attrs(self, view: _View) -> dict[str, Any]:
        if view.attrs is None:  # one read per proposal: every RDB call is a commit
            view.attrs = dict(view.study._storage.get_study_system_attrs(view.study._study_id))
        return view.attrs

    def _set_study_attr(self, view: _View, key: str, value: Any) -> None:
        view.study._storage.set_study_system_attr(view.study._study_id, key, value)
        self._study_attrs(view)[key] = value

    def _genome(self, params: Mapping[str, Any] | None) -> Params | None:
        """``params`` restricted to the space and validated, or None if it is not a complete,
        valid candidate of it."""
        if params is None or any(n not in params for n in self._names):
            return None
        try:
            return self._encoder.validate({n: params[n] for n in self._names})
        except ValueError:
            return None

    def _key(self, params: Params) -> tuple[tuple[str, Any], ...]:
        """Hashable identity of a candidate; type-tagged so True and 1 stay distinct."""
        return tuple((type(params[n]).__name__, params[n]) for n in self._names)

    def _feasible(self, params: Params) -> bool:
        return self._constraint is None or is_feasible(self._constraint(params))

    def _members(self, view: _View, trials: Iterable[FrozenTrial]) -> list[_Member]:
        """Trials usable as parents (complete, finite value, a valid feasible genome), best
        first; ties broken by trial number so the order is reproducible."""
        rows: list[tuple[FrozenTrial, Params]] = []
        for t in trials:
            if t.state != TrialState.COMPLETE or t.value is None or not math.isfinite(t.value):
                continue
            genome = self._genome(t.params)
            if genome is not None and self._feasible(genome):
                rows.append((t, genome))
        if not rows:
            return []
        X = self._encoder.encode([g for _, g in rows])
        members = [
            _Member(t._trial_id, t.number, g, X[i], float(t.value), view.sign * float(t.value))
            for i, (t, g) in enumerate(rows)
        ]
        return sorted(members, key=lambda m: (m.loss, m.number, m.trial_id))

    def _seeds(self, view: _View) -> list[FrozenTrial]:
        """The initial population's evaluated part, fixed (in the storage) at first use so that
        later trials cannot shift it."""
        by_id = {t._trial_id: t for t in [*view.trials, *view.source]}
        cached = self._study_attrs(view).get(self._seeds_key)
        if cached is not None:
            return [by_id[i] for i in cached["trial_ids"] if i in by_id]
        if view.source:
            pool = view.source
        else:
            key = self._get_generation_key()
            pool = [t for t in view.trials if key not in t.system_attrs]
        seeds = self._members(view, pool)[: self._population_size]
        ids = [m.trial_id for m in seeds]
        self._set_study_attr(view, self._seeds_key, {"study": self._initial_from, "trial_ids": ids})
        return [by_id[i] for i in ids]

    # -- generations ------------------------------------------------------------------------
    def _needed(self, view: _View, generation: int) -> int:
        assert self._population_size is not None
        if generation == 0:
            return max(0, self._population_size - len(self._seeds(view)))
        return self._population_size

    def _trial_generation(self, view: _View, trial: FrozenTrial) -> int:
        key = self._get_generation_key()
        generation = trial.system_attrs.get(key)
        if generation is None:  # the view is fresher than ``trial``: it may be tagged already
            fresh = next((t for t in view.trials if t._trial_id == trial._trial_id), trial)
            generation = fresh.system_attrs.get(key)
        if generation is not None:
            return int(generation)
        counts = Counter(
            t.system_attrs.get(key, -1) for t in view.trials if t.state == TrialState.COMPLETE
        )
        latest = max((g for g in counts if g >= 0), default=0)
        generation = latest + 1 if counts.get(latest, 0) >= self._needed(view, latest) else latest
        view.study._storage.set_trial_system_attr(trial._trial_id, key, generation)
        return generation

    def _population(self, view: _View, generation: int) -> list[FrozenTrial]:
        key = self._get_generation_key()
        return [
            t
            for t in view.trials
            if t.state == TrialState.COMPLETE and t.system_attrs.get(key) == generation
        ]

    def _select_parent(self, view: _View, generation: int) -> list[FrozenTrial]:
        if generation <= 0:
            return []
        previous = (
            self._seeds(view) if generation == 1 else self._parent_population(view, generation - 1)
        )
        pool = {t._trial_id: t for t in [*previous, *self._population(view, generation - 1)]}
        members = self._members(view, pool.values())[: self._population_size]
        return [pool[m.trial_id] for m in members]

    def _parent_population(self, view: _View, generation: int) -> list[FrozenTrial]:
        if generation <= 0:
            return []
        key = self._get_parent_cache_key_prefix() + str(generation)
        cached = self._study_attrs(view).get(key)
        if cached is None:
            parents = self._select_parent(view, generation)
            self._set_study_attr(view, key, [t._trial_id for t in parents])
            return parents
        by_id = {t._trial_id: t for t in [*view.trials, *view.source]}
        return [by_id[i] for i in cached if i in by_id]

    def _state(self, view: _View, generation: int) -> dict[str, Any]:
        """The stored state of ``generation``, computing (and storing) any missing ones from the
        latest stored state forward: the chain is what makes a resume continue, not restart."""
        attrs = self._study_attrs(view)
        stored = [g for g in range(generation + 1) if self._state_prefix + str(g) in attrs]
        if stored and stored[-1] == generation:
            return attrs[self._state_prefix + str(generation)]
        if stored:
            start, state = stored[-1], attrs[self._state_prefix + str(stored[-1])]
        else:
            start, state = 0, self._new_state(view, 0, self._sigma0, None, 0, 0)
            self._set_study_attr(view, self._state_prefix + "0", state)
        for g in range(start + 1, generation + 1):
            children, successes = 0, 0
            for t in self._population(view, g - 1):
                record = t.system_attrs.get(self._child_key) or {}
                if record.get("parent_value") is None or t.value is None:
                    continue
                children += 1
                successes += view.sign * t.value < view.sign * record["parent_value"]
            rate = successes / children if children else None
            sigma = state["sigma"]
            if rate is not None and rate > self.SUCCESS_TARGET:
                sigma *= self.SIGMA_FACTOR
            elif rate is not None and rate < self.SUCCESS_TARGET:
                sigma /= self.SIGMA_FACTOR
            sigma = float(np.clip(sigma, self.SIGMA_MIN, self.SIGMA_MAX))
            state = self._new_state(view, g, sigma, rate, children, successes)
            self._set_study_attr(view, self._state_prefix + str(g), state)
            _LOG.info(
                f"genetic generation {g}: sigma {sigma:.4f} (success rate of generation {g - 1}: "
                f"{'n/a' if rate is None else f'{rate:.2f}'}), best parent {state['best_value']}"
            )
        return state

    def _new_state(
        self,
        view: _View,
        generation: int,
        sigma: float,
        rate: float | None,
        children: int,
        successes: int,
    ) -> dict[str, Any]:
        parents = (
            self._seeds(view) if generation == 0 else self._parent_population(view, generation)
        )
        values = [t.value for t in parents if t.value is not None]
        best = (min if view.sign > 0 else max)(values) if values else None
        return {
            "generation": generation,
            "sigma": sigma,
            "success_rate": rate,
            "children": children,
            "successes": int(successes),
            "parents": len(parents),
            "best_value": best,
        }

    # -- proposals --------------------------------------------------------------------------
    def _taken(self, view: _View) -> set[tuple[tuple[str, Any], ...]]:
        """Candidates already evaluated or in flight: not to be proposed again."""
        taken = set()
        for t in view.trials:
            if t.state not in _LIVE:
                continue
            for params in (
                t.params,
                t.system_attrs.get("fixed_params"),
                (t.system_attrs.get(self._child_key) or {}).get("params"),
            ):
                genome = self._genome(params)
                if genome is not None:
                    taken.add(self._key(genome))
        for t in view.source:
            genome = self._genome(t.params)
            if genome is not None:
                taken.add(self._key(genome))
        return taken

    def _propose(self, view: _View, trial: FrozenTrial, generation: int) -> _Child:
        rng = np.random.default_rng([self._seed, 0, generation, trial.number])
        taken = self._taken(view)
        state = self._state(view, generation)  # stored even for generation 0: the history
        if generation == 0:
            return self._search(view, [], 0.0, rng, taken)
        parents = self._members(view, self._parent_population(view, generation))
        if self._predictor is not None and parents:
            child = self._claim(view, generation, state, parents, taken)
            if child is not None:
                return child
        return self._search(view, parents, state["sigma"], rng, taken)

    def _search(
        self,
        view: _View,
        parents: list[_Member],
        sigma: float,
        rng: np.random.Generator,
        taken: set[tuple[tuple[str, Any], ...]],
    ) -> _Child:
        """A fresh feasible child; failing that (the parents' neighbourhood exhausted), a fresh
        feasible random candidate; failing that, a feasible duplicate (the space is used up)."""
        duplicate: _Child | None = None
        used = 0
        if parents:
            found, duplicate, used, feasible = self._collect(
                lambda k: self._breed(parents, sigma, rng, k), taken, 1, self._max_tries, 8
            )
            if found:
                return found[0]
            if not feasible:
                raise self._infeasible(used, "children of feasible parents")
        if used < self._max_tries:
            found, dup, more, feasible = self._collect(
                lambda k: self._random(rng, k), taken, 1, self._max_tries - used, 32
            )
            if found:
                return found[0]
            duplicate = duplicate or dup
            used += more
        if duplicate is None:
            raise self._infeasible(used, "candidates")
        return duplicate

    def _infeasible(self, tries: int, what: str) -> InfeasibleConstraintError:
        return InfeasibleConstraintError(
            f"no feasible candidate in {tries} draws of {what}: the constraint admits less than "
            f"1 in {tries} of them; loosen the limit or raise max_tries (now {self._max_tries})"
        )

    def _collect(
        self,
        draw: Callable[[int], list[_Child]],
        taken: set[tuple[tuple[str, Any], ...]],
        want: int,
        budget: int,
        batch: int,
    ) -> tuple[list[_Child], _Child | None, int, int]:
        """Draw until ``want`` distinct fresh feasible candidates, the budget, or
        ``DUPLICATE_LIMIT`` duplicates in a row; returns (fresh, first feasible duplicate, draws
        used, feasible count)."""
        seen = set(taken)
        found: list[_Child] = []
        duplicate: _Child | None = None
        used = feasible = streak = 0
        while used < budget:
            for child in draw(min(batch, budget - used)):
                used += 1
                if not self._feasible(child.params):
                    continue
                feasible += 1
                key = self._key(child.params)
                if key not in seen:
                    seen.add(key)
                    found.append(child)
                    streak = 0
                    if len(found) >= want:
                        return found, duplicate, used, feasible
                    continue
                duplicate = duplicate or child
                streak += 1
                if streak >= self.DUPLICATE_LIMIT:
                    return found, duplicate, used, feasible
        return found, duplicate, used, feasible

    def _random(self, rng: np.random.Generator, n: int) -> list[_Child]:
        U = rng.random((n, len(self._names)))
        return [_Child(params, "random") for params in self._encoder.from_unit(U)]

    def _tournament(
        self, parents: list[_Member], rng: np.random.Generator, exclude: _Member | None = None
    ) -> _Member:
        """Binary tournament: the better of two distinct random parents (``parents`` is sorted
        best first, so the smaller index wins)."""
        pool = [m for m in parents if m is not exclude] or parents
        if len(pool) == 1:
            return pool[0]
        i, j = rng.choice(len(pool), size=2, replace=False)
        return pool[min(int(i), int(j))]

    def _breed(
        self, parents: list[_Member], sigma: float, rng: np.random.Generator, n: int
    ) -> list[_Child]:
        """``n`` children: optional uniform crossover of two tournament winners, then mutation on
        the [0, 1] encoding; genes that were not mutated keep the parent's exact value."""
        rows: list[np.ndarray] = []
        plans: list[tuple[Params, np.ndarray, dict[str, float], tuple[_Member, ...]]] = []
        for _ in range(n):
            a = self._tournament(parents, rng)
            row, inherited, used = a.row.copy(), dict(a.params), (a,)
            if len(parents) > 1 and rng.random() < self._crossover_prob:
                b = self._tournament(parents, rng, exclude=a)
                from_b = rng.random(len(self._names)) < 0.5
                for j in np.flatnonzero(from_b):
                    name = self._names[j]
                    row[self._columns[name]] = b.row[self._columns[name]]
                    inherited[name] = b.params[name]
                used = (a, b)
            mutate = (rng.random(len(self._names)) < self._mutation_prob) & self._mutable
            if not mutate.any() and self._mutable.any():
                mutate[rng.choice(np.flatnonzero(self._mutable))] = True
            steps: dict[str, float] = {}
            for j in np.flatnonzero(mutate):
                name = self._names[j]
                cols = self._columns[name]
                dist = self._dists[name]
                if isinstance(dist, CategoricalDistribution):
                    current = int(np.argmax(row[cols]))
                    new = int(rng.integers(len(dist.choices) - 1))
                    row[cols] = 0.0
                    row[cols[new + (new >= current)]] = 1.0
                else:
                    z = float(rng.standard_normal())
                    row[cols[0]] = _reflect(row[cols[0]] + sigma * z)
                    steps[name] = z
            rows.append(row)
            plans.append((inherited, mutate, steps, used))
        children = []
        for params, (inherited, mutate, steps, used) in zip(
            self._encoder.decode(np.asarray(rows)), plans, strict=True
        ):
            for j, name in enumerate(self._names):
                if not mutate[j]:
                    params[name] = inherited[name]
                elif name in steps and params[name] == inherited[name]:
                    params[name] = _grid_step(self._dists[name], inherited[name], steps[name])
            best = min(used, key=lambda m: m.loss)
            children.append(
                _Child(params, "offspring", tuple(m.trial_id for m in used), best.value)
            )
        return children

    # -- predictor ----------------------------------------------------------------------------
    def _claim(
        self,
        view: _View,
        generation: int,
        state: dict[str, Any],
        parents: list[_Member],
        taken: set[tuple[tuple[str, Any], ...]],
    ) -> _Child | None:
        """The best-predicted proposal of this generation that no trial has taken yet."""
        proposals = self._proposals(view, generation, state, parents, taken)
        claimed = set(taken)
        for t in view.trials:  # a proposal tried once (even if it failed) is used up
            genome = self._genome((t.system_attrs.get(self._child_key) or {}).get("params"))
            if genome is not None:
                claimed.add(self._key(genome))
        for entry in proposals["entries"]:
            params = self._genome(entry["params"])
            if params is not None and self._key(params) not in claimed:
                return _Child(
                    params,
                    "predictor",
                    tuple(entry["parents"]),
                    entry["parent_value"],
                    entry["predicted"],
                )
        return None

    def _proposals(
        self,
        view: _View,
        generation: int,
        state: dict[str, Any],
        parents: list[_Member],
        taken: set[tuple[tuple[str, Any], ...]],
    ) -> dict[str, Any]:
        """This generation's ranked proposals, made once and stored: fit the predictor on every
        completed trial, breed many children, score them in one ``predict`` call."""
        key = self._proposals_prefix + str(generation)
        cached = self._study_attrs(view).get(key)
        if cached is not None:
            return cached
        assert self._predictor is not None and self._population_size is not None
        data = self._members(view, [*view.trials, *view.source])
        record: dict[str, Any] = {"generation": generation, "fitted_on": len(data), "entries": []}
        try:
            self._predictor.fit(
                np.asarray([m.row for m in data]), np.asarray([m.value for m in data])
            )
        except ValueError as exc:  # e.g. too few points yet: breed without the predictor
            record["error"] = str(exc)
            _LOG.info(f"genetic generation {generation}: predictor not used ({exc})")
            self._set_study_attr(view, key, record)
            return record
        rng = np.random.default_rng([self._seed, 1, generation])
        want = self._candidates_per_child * self._population_size
        found, _, used, feasible = self._collect(
            lambda k: self._breed(parents, state["sigma"], rng, k), taken, want, self._max_tries, 64
        )
        if not feasible:
            raise self._infeasible(used, "children of feasible parents")
        if found:
            X = self._encoder.encode([c.params for c in found])
            predicted = np.asarray(self._predictor.predict(X), dtype=float).reshape(-1)
            if predicted.shape != (len(found),):
                raise ValueError(
                    f"predictor.predict returned {predicted.shape[0]} values for {len(found)} rows"
                )
            order = np.argsort(view.sign * predicted, kind="stable")[: 2 * self._population_size]
            record["entries"] = [
                {
                    "params": found[i].params,
                    "parents": list(found[i].parents),
                    "parent_value": found[i].parent_value,
                    "predicted": float(predicted[i]),
                }
                for i in order
            ]
        record["candidates"] = len(found)
        self._set_study_attr(view, key, record)
        return record


def _check_single_objective(study: Study) -> None:
    if len(study.directions) > 1:
        raise ValueError(
            "AdaptiveGeneticSampler is single-objective: it ranks parents by one value; use "
            "optuna.samplers.NSGAIISampler for a multi-objective study"
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return _is_int(value) or (isinstance(value, (float, np.floating)) and math.isfinite(value))


def _size_above_one(dist: BaseDistribution) -> bool:
    """Whether a gene has more than one value (a mutation can change it)."""
    if isinstance(dist, CategoricalDistribution):
        return len(dist.choices) > 1
    assert isinstance(dist, (IntDistribution, FloatDistribution))
    return dist.high > dist.low
