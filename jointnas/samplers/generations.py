"""The genetic sampler's generations, kept in the study's storage.

``AdaptiveGeneticSampler`` runs inside Optuna, where trials may be proposed by parallel
workers, or by a process resuming a study another one started. So nothing that shapes the search
lives only in memory: as in Optuna's ``BaseGASampler``, each trial is tagged with its generation
(a trial system attr) and each generation's parents are cached (a study system attr); beside
them this module stores the initial population (``seeds``), and per generation the adaptive
state (sigma, and the success statistics that set it). Every read goes through one ``View`` per
proposal: one consistent read of the storage, and one round trip for the study's attrs (on an
RDB storage every call is a commit).

Generation 0 is the initial population: the best completed trials that predate the genetic
search (this study's own trials without a generation tag, or those of the ``initial_from``
study), topped up with random candidates when there are fewer than ``population_size``. Parents
of generation ``g`` are the best ``population_size`` of the parents of ``g - 1`` and of the
completed generation ``g - 1`` (elitist: a good candidate survives until something beats it).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from jointnas.samplers.operators import beats_parent, one_fifth_rule, success_rate
from jointnas.samplers.support import check_single_objective
from jointnas.spaces.encoding import Encoder, Params

Key = tuple[tuple[str, Any], ...]

_LOG = optuna.logging.get_logger(__name__)
_LIVE = (TrialState.RUNNING, TrialState.WAITING, TrialState.COMPLETE)


@dataclass(frozen=True)
class Member:
    """An evaluated candidate that can be a parent: its params, encoded row and loss (the
    objective turned into lower-is-better)."""

    trial_id: int
    number: int
    params: Params
    row: np.ndarray
    value: float
    loss: float


@dataclass
class View:
    """One consistent read of the storage for one proposal: this study's trials (all states)
    and the COMPLETE trials of the ``initial_from`` study."""

    study: Study
    trials: list[FrozenTrial]
    source: list[FrozenTrial]
    sign: float  # +1 when minimising, -1 when maximising: loss = sign * value
    attrs: dict[str, Any] | None = None  # the study's system attrs, read once, kept in step

    def study_attrs(self) -> dict[str, Any]:
        if self.attrs is None:
            self.attrs = dict(self.study._storage.get_study_system_attrs(self.study._study_id))
        return self.attrs

    def set_study_attr(self, key: str, value: Any) -> None:
        self.study._storage.set_study_system_attr(self.study._study_id, key, value)
        self.study_attrs()[key] = value


class Generations:
    """Generation tags, parent populations, seeds and the sigma chain of one sampler, stored
    under ``prefix`` (the sampler's class name, as ``BaseGASampler`` keys its own attrs)."""

    def __init__(
        self,
        *,
        encoder: Encoder,
        feasible: Callable[[Params], bool],
        population_size: int,
        initial_from: str | None,
        sigma: float,
        prefix: str,
    ) -> None:
        self.encoder = encoder
        self._names = list(encoder.names)
        self._feasible = feasible
        self.population_size = population_size
        self._initial_from = initial_from
        self._sigma0 = sigma
        self.generation_key = f"{prefix}:generation"
        self.child_key = f"{prefix}:child"
        self.parent_prefix = f"{prefix}:parent:"
        self._state_prefix = f"{prefix}:state:"
        self.proposals_prefix = f"{prefix}:proposals:"
        self._seeds_key = f"{prefix}:seeds"

    # -- reads ------------------------------------------------------------------------------
    def view(self, study: Study) -> View:
        check_single_objective(study, "AdaptiveGeneticSampler", "it ranks parents by one value")
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
        return View(study, trials, source, sign)

    def genome(self, params: Mapping[str, Any] | None) -> Params | None:
        """``params`` restricted to the space and validated, or None if it is not a complete,
        valid candidate of it."""
        if params is None or any(n not in params for n in self._names):
            return None
        try:
            return self.encoder.validate({n: params[n] for n in self._names})
        except ValueError:
            return None

    def key(self, params: Params) -> Key:
        """Hashable identity of a candidate; type-tagged so True and 1 stay distinct."""
        return tuple((type(params[n]).__name__, params[n]) for n in self._names)

    def taken(self, view: View) -> set[Key]:
        """Candidates already evaluated or in flight: not to be proposed again."""
        taken = set()
        for t in view.trials:
            if t.state not in _LIVE:
                continue
            for params in (
                t.params,
                t.system_attrs.get("fixed_params"),
                (t.system_attrs.get(self.child_key) or {}).get("params"),
            ):
                genome = self.genome(params)
                if genome is not None:
                    taken.add(self.key(genome))
        for t in view.source:
            genome = self.genome(t.params)
            if genome is not None:
                taken.add(self.key(genome))
        return taken

    def members(self, view: View, trials: Iterable[FrozenTrial]) -> list[Member]:
        """Trials usable as parents (complete, finite value, a valid feasible genome), best
        first; ties broken by trial number so the order is reproducible."""
        rows: list[tuple[FrozenTrial, Params]] = []
        for t in trials:
            if t.state != TrialState.COMPLETE or t.value is None or not math.isfinite(t.value):
                continue
            genome = self.genome(t.params)
            if genome is not None and self._feasible(genome):
                rows.append((t, genome))
        if not rows:
            return []
        X = self.encoder.encode([g for _, g in rows])
        members = [
            Member(t._trial_id, t.number, g, X[i], float(t.value), view.sign * float(t.value))
            for i, (t, g) in enumerate(rows)
        ]
        return sorted(members, key=lambda m: (m.loss, m.number, m.trial_id))

    def seeds(self, view: View) -> list[FrozenTrial]:
        """The initial population's evaluated part, fixed (in the storage) at first use so that
        later trials cannot shift it."""
        by_id = {t._trial_id: t for t in [*view.trials, *view.source]}
        cached = view.study_attrs().get(self._seeds_key)
        if cached is not None:
            return [by_id[i] for i in cached["trial_ids"] if i in by_id]
        untagged = [t for t in view.trials if self.generation_key not in t.system_attrs]
        pool = view.source or untagged
        ids = [m.trial_id for m in self.members(view, pool)[: self.population_size]]
        view.set_study_attr(self._seeds_key, {"study": self._initial_from, "trial_ids": ids})
        return [by_id[i] for i in ids]

    # -- generations ------------------------------------------------------------------------
    def trial_generation(self, view: View, trial: FrozenTrial) -> int:
        """Generation of ``trial``, tagged on first use as in ``BaseGASampler``, except that
        generation 0 only needs the random top-up of the initial population (the seeds are
        already evaluated), and is skipped when the seeds fill it."""
        key = self.generation_key
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
        needed = (
            max(0, self.population_size - len(self.seeds(view)))
            if latest == 0
            else self.population_size
        )
        generation = latest + 1 if counts.get(latest, 0) >= needed else latest
        view.study._storage.set_trial_system_attr(trial._trial_id, key, generation)
        return generation

    def population(self, view: View, generation: int) -> list[FrozenTrial]:
        """The completed trials of ``generation``."""
        key = self.generation_key
        return [
            t
            for t in view.trials
            if t.state == TrialState.COMPLETE and t.system_attrs.get(key) == generation
        ]

    def select_parent(self, view: View, generation: int) -> list[FrozenTrial]:
        """The best ``population_size`` of the previous parents and the previous generation."""
        if generation <= 0:
            return []
        previous = self.seeds(view) if generation == 1 else self.parents(view, generation - 1)
        pool = {t._trial_id: t for t in [*previous, *self.population(view, generation - 1)]}
        members = self.members(view, pool.values())[: self.population_size]
        return [pool[m.trial_id] for m in members]

    def parents(self, view: View, generation: int) -> list[FrozenTrial]:
        """Parents of ``generation``, selected once and cached in the study like
        ``BaseGASampler`` does; resolved against the ``initial_from`` study too."""
        if generation <= 0:
            return []
        key = self.parent_prefix + str(generation)
        cached = view.study_attrs().get(key)
        if cached is None:
            parents = self.select_parent(view, generation)
            view.set_study_attr(key, [t._trial_id for t in parents])
            return parents
        by_id = {t._trial_id: t for t in [*view.trials, *view.source]}
        return [by_id[i] for i in cached if i in by_id]

    # -- the adaptive state -----------------------------------------------------------------
    def state(self, view: View, generation: int) -> dict[str, Any]:
        """The stored state of ``generation``, computing (and storing) any missing ones from the
        latest stored state forward: the chain is what makes a resume continue, not restart."""
        attrs = view.study_attrs()
        stored = [g for g in range(generation + 1) if self._state_prefix + str(g) in attrs]
        if stored and stored[-1] == generation:
            return attrs[self._state_prefix + str(generation)]
        if stored:
            start, state = stored[-1], attrs[self._state_prefix + str(stored[-1])]
        else:
            start, state = 0, self._new_state(view, 0, self._sigma0, None, 0, 0)
            view.set_study_attr(self._state_prefix + "0", state)
        for g in range(start + 1, generation + 1):
            children, parents = [], []
            for t in self.population(view, g - 1):
                record = t.system_attrs.get(self.child_key) or {}
                if record.get("parent_value") is not None and t.value is not None:
                    children.append(-view.sign * t.value)  # fitness: higher is better
                    parents.append(-view.sign * record["parent_value"])
            rate = success_rate(children, parents)
            sigma = one_fifth_rule(state["sigma"], rate)
            successes = int(np.count_nonzero(beats_parent(children, parents)))
            state = self._new_state(view, g, sigma, rate, len(children), successes)
            view.set_study_attr(self._state_prefix + str(g), state)
            _LOG.info(
                f"genetic generation {g}: sigma {sigma:.4f} (success rate of generation {g - 1}: "
                f"{'n/a' if rate is None else f'{rate:.2f}'}), best parent {state['best_value']}"
            )
        return state

    def _new_state(
        self,
        view: View,
        generation: int,
        sigma: float,
        rate: float | None,
        children: int,
        successes: int,
    ) -> dict[str, Any]:
        parents = self.seeds(view) if generation == 0 else self.parents(view, generation)
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

    def history(self, study: Study) -> list[dict[str, Any]]:
        """The stored states, oldest first (see ``AdaptiveGeneticSampler.history``)."""
        attrs = study._storage.get_study_system_attrs(study._study_id)
        states = [v for k, v in attrs.items() if k.startswith(self._state_prefix)]
        return sorted(states, key=lambda s: s["generation"])
