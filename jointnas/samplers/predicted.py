"""The genetic sampler's predictor mode: train only the children a predictor ranks best.

JointNAS spends trainings only on children its accuracy predictor likes: each generation, fit the
predictor on every completed trial, breed many more children than will be trained, score them
in one ``predict`` call, and propose the best-predicted ones. The ranking is made once per
generation and stored in the study (like the rest of the sampler's state), so parallel workers
and a resumed study claim proposals from the same list instead of each ranking their own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna

from jointnas.samplers.breeding import Breeder, Child
from jointnas.samplers.generations import Generations, Key, Member, View
from jointnas.samplers.support import predict_rows

_LOG = optuna.logging.get_logger(__name__)


class PredictedChoice:
    """Ranked proposals per generation: ``candidates_per_child * population_size`` children
    scored, the best ``2 * population_size`` stored (spares for claims that fail)."""

    def __init__(
        self,
        *,
        predictor: Any,
        generations: Generations,
        breeder: Breeder,
        population_size: int,
        candidates_per_child: int,
        seed: int,
    ) -> None:
        self._predictor = predictor
        self._generations = generations
        self._breeder = breeder
        self.population_size = population_size
        self._candidates_per_child = candidates_per_child
        self._seed = seed

    def claim(
        self,
        view: View,
        generation: int,
        sigma: float,
        parents: list[Member],
        taken: set[Key],
    ) -> Child | None:
        """The best-predicted proposal of this generation that no trial has taken yet; None
        when the predictor could not be fitted yet, or every proposal is taken."""
        gens = self._generations
        proposals = self._proposals(view, generation, sigma, parents, taken)
        claimed = set(taken)
        for t in view.trials:  # a proposal tried once (even if it failed) is used up
            genome = gens.genome((t.system_attrs.get(gens.child_key) or {}).get("params"))
            if genome is not None:
                claimed.add(gens.key(genome))
        for entry in proposals["entries"]:
            params = gens.genome(entry["params"])
            if params is not None and gens.key(params) not in claimed:
                return Child(
                    params,
                    "predictor",
                    tuple(entry["parents"]),
                    entry["parent_value"],
                    entry["predicted"],
                )
        return None

    def _proposals(
        self,
        view: View,
        generation: int,
        sigma: float,
        parents: list[Member],
        taken: set[Key],
    ) -> dict[str, Any]:
        """This generation's ranked proposals, made once and stored: fit the predictor on every
        completed trial, breed many children, score them in one ``predict`` call."""
        gens = self._generations
        key = gens.proposals_prefix + str(generation)
        cached = view.study_attrs().get(key)
        if cached is not None:
            return cached
        data = gens.members(view, [*view.trials, *view.source])
        record: dict[str, Any] = {"generation": generation, "fitted_on": len(data), "entries": []}
        try:
            self._predictor.fit(
                np.asarray([m.row for m in data]), np.asarray([m.value for m in data])
            )
        except ValueError as exc:  # e.g. too few points yet: breed without the predictor
            record["error"] = str(exc)
            _LOG.info(f"genetic generation {generation}: predictor not used ({exc})")
            view.set_study_attr(key, record)
            return record
        rng = np.random.default_rng([self._seed, 1, generation])
        want = self._candidates_per_child * self.population_size
        found = self._breeder.offspring(parents, sigma, rng, taken, want)
        if found:
            X = gens.encoder.encode([c.params for c in found])
            predicted = predict_rows(self._predictor, X)
            order = np.argsort(view.sign * predicted, kind="stable")[: 2 * self.population_size]
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
        view.set_study_attr(key, record)
        return record
