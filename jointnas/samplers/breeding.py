"""The genetic sampler's proposals: fresh, feasible children of the stored parents.

Children are bred by the shared engine (``jointnas.samplers.operators.breed``, the same as the
pipeline's fine search) on the parents' encoded rows, then turned back into params, where a gene
that was not mutated keeps its parent's exact value (a decoded float could differ from it in
the last bit). What the sampler adds around the engine is what an Optuna study needs:

* **Constraints are checked before training.** Every proposal satisfies the cheap constraint
  (capped rejection), as in JointNAS, where a candidate over the resource limit is never trained.
* **No repeats.** A proposal never repeats a candidate already evaluated or in flight, unless
  the reachable space is used up: then a feasible duplicate beats stopping the study.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from jointnas.errors import InfeasibleConstraintError
from jointnas.samplers.generations import Key, Member
from jointnas.samplers.operators import Genes, breed
from jointnas.spaces.encoding import Params


@dataclass
class Child:
    """A proposal and where it came from (kept on the trial, for the success rule and for
    anyone reading the study afterwards)."""

    params: Params
    origin: str
    parents: tuple[int, ...] = ()
    parent_value: float | None = None
    predicted: float | None = None

    def record(self, generation: int) -> dict[str, Any]:
        """The JSON-able form stored on the trial."""
        return {
            "params": self.params,
            "origin": self.origin,
            "parents": list(self.parents),
            "parent_value": self.parent_value,
            "predicted": self.predicted,
            "generation": generation,
        }


class Breeder:
    """Draws distinct feasible children (or random candidates) within ``max_tries`` draws."""

    #: consecutive feasible duplicates after which a search for a fresh candidate gives up
    #: (small discrete spaces run out of new candidates; the search must then still end)
    DUPLICATE_LIMIT = 64

    def __init__(
        self,
        *,
        genes: Genes,
        feasible: Callable[[Params], bool],
        key: Callable[[Params], Key],
        mutation_prob: float,
        crossover_prob: float,
        max_tries: int,
    ) -> None:
        self._encoder = genes.encoder
        self._names = list(genes.encoder.names)
        self._genes = genes
        self._feasible = feasible
        self._key = key
        self._mutation_prob = mutation_prob
        self._crossover_prob = crossover_prob
        self._max_tries = max_tries

    def search(
        self, parents: list[Member], sigma: float, rng: np.random.Generator, taken: set[Key]
    ) -> Child:
        """A fresh feasible child; failing that (the parents' neighbourhood exhausted), a fresh
        feasible random candidate; failing that, a feasible duplicate (the space is used up)."""
        duplicate: Child | None = None
        used = 0
        if parents:
            found, duplicate, used, feasible = self._collect(
                lambda k: self.breed(parents, sigma, rng, k), taken, 1, self._max_tries, 8
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

    def offspring(
        self,
        parents: list[Member],
        sigma: float,
        rng: np.random.Generator,
        taken: set[Key],
        want: int,
    ) -> list[Child]:
        """Up to ``want`` distinct fresh feasible children (fewer where the parents'
        neighbourhood runs out), for a predictor to choose from."""
        found, _, used, feasible = self._collect(
            lambda k: self.breed(parents, sigma, rng, k), taken, want, self._max_tries, 64
        )
        if not feasible:
            raise self._infeasible(used, "children of feasible parents")
        return found

    def breed(
        self, parents: list[Member], sigma: float, rng: np.random.Generator, n: int
    ) -> list[Child]:
        """``n`` children of ``parents`` (best first) by the shared operators."""
        brood = breed(
            np.asarray([m.row for m in parents]),
            -np.asarray([m.loss for m in parents]),
            n,
            rng,
            genes=self._genes,
            sigma=sigma,
            mutation_prob=self._mutation_prob,
            crossover_prob=self._crossover_prob,
        )
        children = []
        for i, params in enumerate(self._encoder.decode(brood.rows)):
            a, b = parents[brood.first[i]], parents[brood.second[i]]
            for j, name in enumerate(self._names):
                if not brood.mutated[i, j]:
                    params[name] = (b if brood.from_second[i, j] else a).params[name]
            used = (a, b) if brood.crossed[i] else (a,)
            best = min(used, key=lambda m: m.loss)
            children.append(Child(params, "offspring", tuple(m.trial_id for m in used), best.value))
        return children

    def _random(self, rng: np.random.Generator, n: int) -> list[Child]:
        U = rng.random((n, len(self._names)))
        return [Child(params, "random") for params in self._encoder.from_unit(U)]

    def _infeasible(self, tries: int, what: str) -> InfeasibleConstraintError:
        return InfeasibleConstraintError(
            f"no feasible candidate in {tries} draws of {what}: the constraint admits less than "
            f"1 in {tries} of them; loosen the limit or raise max_tries (now {self._max_tries})"
        )

    def _collect(
        self,
        draw: Callable[[int], list[Child]],
        taken: set[Key],
        want: int,
        budget: int,
        batch: int,
    ) -> tuple[list[Child], Child | None, int, int]:
        """Draw until ``want`` distinct fresh feasible candidates, the budget, or
        ``DUPLICATE_LIMIT`` duplicates in a row; returns (fresh, first feasible duplicate, draws
        used, feasible count)."""
        seen = set(taken)
        found: list[Child] = []
        duplicate: Child | None = None
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
