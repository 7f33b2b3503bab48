"""JointNAS's adaptive genetic fine search as an Optuna sampler.

JointNAS (Dai et al., 2020) ends its search with an *adaptive genetic* stage: it starts from the
best candidates of the coarse stage, breeds children by mutation and crossover, keeps the best of
parents and children, and, once an accuracy predictor exists, lets the predictor choose which of
many children are worth training. ``AdaptiveGeneticSampler`` is that stage for any fixed Optuna
search space, so it runs inside a plain study, on any storage, beside the other samplers.

The parts, one concept each:

* ``jointnas.samplers.operators``: how a child is made (tournament, crossover, mutation, the
  1/5th success rule), shared with the pipeline's predictor-only ``runs.search.fine_search``;
* ``jointnas.samplers.generations``: the generations, parents and adaptive state, all kept in
  the study's storage, so a resumed or parallel study continues from exactly the same state;
* ``jointnas.samplers.breeding``: fresh feasible children of the stored parents;
* ``jointnas.samplers.predicted``: with a predictor, its ranked choice among many children;
* this module: the Optuna sampler around them.

**No hidden RNG state.** The draws for trial ``n`` of generation ``g`` come from a Generator
seeded with ``(seed, g, n)``; the same seed gives the same proposals, in one process or after a
resume, and parallel workers never share draws.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseGASampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from jointnas.constraints import is_feasible
from jointnas.samplers.breeding import Breeder, Child
from jointnas.samplers.generations import Generations, View
from jointnas.samplers.operators import (
    SIGMA_FACTOR,
    SIGMA_MAX,
    SIGMA_MIN,
    SUCCESS_TARGET,
    Genes,
)
from jointnas.samplers.predicted import PredictedChoice
from jointnas.samplers.support import (
    Constraint,
    RandomFallback,
    check_single_objective,
    fresh_seed,
    is_int,
    is_real,
)
from jointnas.spaces.encoding import Encoder, Params

_SINGLE = "it ranks parents by one value"
_BUILD_LOCK = threading.Lock()


class AdaptiveGeneticSampler(BaseGASampler):
    """JointNAS's adaptive genetic search over a fixed search space, under a cheap constraint.

    Generation 0 is the initial population: the ``population_size`` best completed trials that
    predate the genetic search (this study's own trials without a generation tag, or those of the
    study named ``initial_from`` in the same storage), topped up with feasible random candidates
    when there are fewer; only the top-up is proposed, the seeds are already evaluated. Each later
    generation ``g`` breeds ``population_size`` children from the parents ``P_g``, the best
    ``population_size`` of ``P_{g-1}`` and generation ``g-1`` (elitist, so a good seed survives
    until something beats it). A child is a uniform crossover of two binary-tournament winners
    (with probability ``crossover_prob``, else a copy of one) followed by mutation: each gene
    mutates with probability ``mutation_prob`` (default ``1 / len(search_space)``; at least one
    does), numeric genes by a Gaussian step of std ``sigma`` on the [0, 1] encoding, clipped at
    the bounds, categoricals by switching to another choice.

    ``sigma`` adapts by Rechenberg's 1/5th success rule: when more than a fifth of generation
    ``g-1``'s children beat their better parent, the steps were too timid and sigma grows by 1.22;
    when fewer did, it shrinks by 1.22; it stays in [0.01, 0.5]. The per-generation state is in
    the study's system attrs (see ``history``).

    With a ``predictor`` (an object with ``fit(X, y)`` and ``predict(X)`` on encoded matrices, as
    the jointnas predictors have), each generation fits it on every completed trial, breeds
    ``candidates_per_child * population_size`` distinct feasible children, scores them in one
    ``predict`` call and proposes the best-predicted ones: JointNAS's way of spending trainings
    only on children the predictor likes. If the predictor cannot be fitted yet (too few points:
    it raises ``ValueError``), that generation breeds without it.

    Proposals never repeat a RUNNING, WAITING or COMPLETE trial (nor a trial of the
    ``initial_from`` study) unless the reachable space is exhausted. Single-objective only.

    Without ``search_space`` the space is the distributions of the study's first completed
    trial (one space for all generations; until a trial completes, parameters are sampled at
    random, and parameters outside it always are, like TPE's). As a trial-by-trial sampler it
    trails Optuna's TPE and GPSampler on the suites of ``benchmarks/bench_sampler_suites.py``;
    its place is the pipeline's predictor-scored fine stage (``jointnas.runs.search``) and searches
    of many cheap generations.
    """

    SIGMA_MIN = SIGMA_MIN
    SIGMA_MAX = SIGMA_MAX
    SIGMA_FACTOR = SIGMA_FACTOR
    SUCCESS_TARGET = SUCCESS_TARGET
    DUPLICATE_LIMIT = Breeder.DUPLICATE_LIMIT

    def __init__(
        self,
        *,
        search_space: Mapping[str, BaseDistribution] | None = None,
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
        if search_space is not None:
            if not isinstance(search_space, Mapping) or not search_space:
                raise ValueError("search_space must be a non-empty mapping name -> distribution")
            try:
                Encoder(search_space)
            except TypeError as exc:
                raise ValueError(f"search_space: {exc}") from None
        if constraint is not None and not callable(constraint):
            raise ValueError("constraint must be None or a callable params -> sequence of floats")
        if predictor is not None and not all(
            callable(getattr(predictor, m, None)) for m in ("fit", "predict")
        ):
            raise ValueError("predictor must be None or an object with fit(X, y) and predict(X)")
        if not is_int(population_size) or population_size < 2:
            raise ValueError(f"population_size must be an int >= 2, got {population_size!r}")
        if initial_from is not None and (not isinstance(initial_from, str) or not initial_from):
            raise ValueError(f"initial_from must be None or a study name, got {initial_from!r}")
        if mutation_prob is not None and (
            not is_real(mutation_prob) or not 0.0 < mutation_prob <= 1.0
        ):
            raise ValueError(f"mutation_prob must be in (0, 1], got {mutation_prob!r}")
        if not is_real(sigma) or not SIGMA_MIN <= sigma <= SIGMA_MAX:
            raise ValueError(
                f"sigma must be in [{SIGMA_MIN}, {SIGMA_MAX}] (a step on the [0, 1] "
                f"encoding), got {sigma!r}"
            )
        if not is_real(crossover_prob) or not 0.0 <= crossover_prob <= 1.0:
            raise ValueError(f"crossover_prob must be in [0, 1], got {crossover_prob!r}")
        if not is_int(candidates_per_child) or candidates_per_child < 1:
            raise ValueError(
                f"candidates_per_child must be an int >= 1, got {candidates_per_child!r}"
            )
        if seed is not None and (not is_int(seed) or seed < 0):
            raise ValueError(f"seed must be None or an int >= 0, got {seed!r}")
        if not is_int(max_tries) or max_tries < 1:
            raise ValueError(f"max_tries must be an int >= 1, got {max_tries!r}")
        super().__init__(population_size=int(population_size))

        self._constraint = constraint
        self._seed = fresh_seed() if seed is None else int(seed)
        self._options = {
            "predictor": predictor,
            "initial_from": initial_from,
            "mutation_prob": mutation_prob,
            "sigma": float(sigma),
            "crossover_prob": float(crossover_prob),
            "candidates_per_child": int(candidates_per_child),
            "max_tries": int(max_tries),
        }
        self._fallback_seed = int(np.random.SeedSequence([self._seed, 2]).generate_state(1)[0])
        self._inferred = search_space is None
        self._intersection = IntersectionSearchSpace()
        self._random = RandomSampler(seed=self._fallback_seed)  # before the space is known
        self._dists: dict[str, BaseDistribution] = {}
        if search_space is not None:
            self._build(search_space)

    def _build(self, search_space: Mapping[str, BaseDistribution]) -> None:
        """The parts that need the space: at construction, or (no ``search_space``) from the
        distributions of the study's first completed trial, like a GA must: one fixed space."""
        o = self._options
        encoder = Encoder(search_space)
        genes = Genes.of(encoder)
        mutation_prob = o["mutation_prob"] or genes.default_mutation_prob()  # 1 / genes
        population_size = int(self._population_size)
        self._encoder = encoder
        self._fallback = RandomFallback(
            sampler="AdaptiveGeneticSampler",
            distributions=self._dists,
            seed=self._fallback_seed,
        )
        prefix = self._get_generation_key().rsplit(":", 1)[0]  # BaseGASampler's: class name
        self._generations = Generations(
            encoder=encoder,
            feasible=self._feasible,
            population_size=population_size,
            initial_from=o["initial_from"],
            sigma=o["sigma"],
            prefix=prefix,
        )
        self._breeder = Breeder(
            genes=genes,
            feasible=self._feasible,
            key=self._generations.key,
            mutation_prob=float(mutation_prob),
            crossover_prob=o["crossover_prob"],
            max_tries=o["max_tries"],
        )
        self._predicted = (
            None
            if o["predictor"] is None
            else PredictedChoice(
                predictor=o["predictor"],
                generations=self._generations,
                breeder=self._breeder,
                population_size=population_size,
                candidates_per_child=o["candidates_per_child"],
                seed=self._seed,
            )
        )
        assert self._generations.generation_key == self._get_generation_key()
        assert self._generations.parent_prefix == self._get_parent_cache_key_prefix()
        self._dists = dict(encoder.distributions)  # last: it says the parts are ready

    def _ready(self, study: Study) -> bool:
        """Whether the space is known; without ``search_space``, taken from the first
        completed trial's distributions (parameters with one value left out)."""
        if self._dists:
            return True
        with _BUILD_LOCK:  # threads of optimize(n_jobs=...) must build one set of parts
            if self._dists:
                return True
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                space = {n: d for n, d in t.distributions.items() if not d.single()}
                if space:
                    self._build(space)
                    return True
        return False

    @property
    def population_size(self) -> int | None:
        return self._population_size

    @population_size.setter
    def population_size(self, value: int) -> None:
        """As ``BaseGASampler``'s setter, passed on to the parts that use the size."""
        if not is_int(value) or value < 2:
            raise ValueError(f"population_size must be an int >= 2, got {value!r}")
        self._population_size = int(value)
        if self._dists:
            self._generations.population_size = int(value)
            if self._predicted is not None:
                self._predicted.population_size = int(value)

    # -- Optuna sampler API -----------------------------------------------------------------
    def reseed_rng(self) -> None:
        """Reseed only the fallback for parameters outside the space.

        Optuna calls this per worker thread so that copies of a sampler do not repeat draws; the
        genetic draws are keyed by trial number and never repeat, and keeping their seed keeps a
        seeded study reproducible.
        """
        self._random.reseed_rng()
        if self._dists:
            self._fallback.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if not self._ready(study):
            return {}
        if self._inferred:  # what every completed trial asked for, as TPE and GPSampler infer
            inferred = self._intersection.calculate(study)
            return {n: d for n, d in self._dists.items() if inferred.get(n) == d}
        return dict(self._dists)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """Propose the whole candidate jointly (the constraint needs every parameter) and return
        the part in ``search_space`` (all of it, unless e.g. PartialFixedSampler fixes some)."""
        check_single_objective(study, "AdaptiveGeneticSampler", _SINGLE)
        if not search_space or not self._ready(study):
            return {}
        for name, dist in search_space.items():
            if self._dists.get(name) != dist:
                raise ValueError(
                    f"parameter {name!r} with {dist!r} is not in the sampler's search_space; "
                    "build AdaptiveGeneticSampler with the space the objective suggests"
                )
        key = self._generations.child_key
        stored = trial.system_attrs.get(key)
        if stored is None:  # the usual path; a stored proposal makes repeated calls idempotent
            view = self._generations.view(study)
            generation = self._generations.trial_generation(view, trial)
            stored = self._propose(view, trial, generation).record(generation)
            study._storage.set_trial_system_attr(trial._trial_id, key, stored)
        params = self._encoder.validate(stored["params"])
        return {name: params[name] for name in search_space}

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        check_single_objective(study, "AdaptiveGeneticSampler", _SINGLE)
        if self._inferred:  # like TPE: what is outside the inferred space is random
            return self._random.sample_independent(study, trial, param_name, param_distribution)
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    # -- BaseGASampler API ------------------------------------------------------------------
    def get_trial_generation(self, study: Study, trial: FrozenTrial) -> int:
        """Generation of ``trial``, tagged on first use as in ``BaseGASampler``, except that
        generation 0 only needs the random top-up of the initial population (the seeds are
        already evaluated), and is skipped when the seeds fill it."""
        if not self._ready(study):
            return 0
        gens = self._generations
        return gens.trial_generation(gens.view(study), trial)

    def select_parent(self, study: Study, generation: int) -> list[FrozenTrial]:
        """The best ``population_size`` of the previous parents and the previous generation."""
        if not self._ready(study):
            return []
        gens = self._generations
        return gens.select_parent(gens.view(study), generation)

    def get_parent_population(self, study: Study, generation: int) -> list[FrozenTrial]:
        """Parents of ``generation``, cached in the study like ``BaseGASampler`` does; resolved
        against the ``initial_from`` study too, since seeds may live there."""
        if not self._ready(study):
            return []
        gens = self._generations
        return gens.parents(gens.view(study), generation)

    # -- public helpers ---------------------------------------------------------------------
    def history(self, study: Study) -> list[dict[str, Any]]:
        """The stored per-generation state, oldest first: ``generation``, ``sigma`` (used to
        breed it), ``success_rate``/``children``/``successes`` (of the generation before, which
        set sigma), ``parents`` and ``best_value`` (of its parent population; for generation 0,
        of the seeds)."""
        return self._generations.history(study) if self._ready(study) else []

    # -- proposals --------------------------------------------------------------------------
    def _feasible(self, params: Params) -> bool:
        return self._constraint is None or is_feasible(self._constraint(params))

    def _propose(self, view: View, trial: FrozenTrial, generation: int) -> Child:
        gens = self._generations
        rng = np.random.default_rng([self._seed, 0, generation, trial.number])
        taken = gens.taken(view)
        state = gens.state(view, generation)  # stored even for generation 0: the history
        if generation == 0:
            return self._breeder.search([], 0.0, rng, taken)
        parents = gens.members(view, gens.parents(view, generation))
        if self._predicted is not None and parents:
            child = self._predicted.claim(view, generation, state["sigma"], parents, taken)
            if child is not None:
                return child
        return self._breeder.search(parents, state["sigma"], rng, taken)
