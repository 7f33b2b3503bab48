"""Vectorised adaptive genetic fine search: whole generations as one matrix.

The fine search of JointNAS (Dai et al., 2020) scores candidates with the predictor, so what
bounds it is bookkeeping per candidate. Here a generation is an encoded matrix: children come
from ``jointnas.samplers.operators.breed`` (the same tournament, crossover, mutation and snapping
as ``AdaptiveGeneticSampler``, as array operations on whole generations), the constraint is
checked with the vectorised cost on all children at once, and the predictor scores them in one
call. The mutation strength adapts with the same ``one_fifth_rule``. What is particular to this
search: every child is a crossover of two parents, children repeating a parent or each other are
dropped before scoring, and the next population is the best of parents and children (elitist).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from jointnas.constraints import Mask, draw_feasible, uniform_rows
from jointnas.samplers.operators import Genes, breed, one_fifth_rule, success_rate
from jointnas.samplers.support import predict_rows

if TYPE_CHECKING:  # types only: a search on a shipped predictor imports no network code
    from jointnas.spaces.base import Space
    from jointnas.spaces.encoding import Params

#: encoded rows -> feasible row mask (``jointnas.constraints.cost_feasibility`` makes one)
Feasible = Mask


class MatrixPredictor(Protocol):
    def predict(self, X: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True, kw_only=True)
class FineSearchResult:
    """The final population (best first), its predictions and the per-generation history."""

    X: np.ndarray
    predicted: np.ndarray
    history: list[dict[str, float]] = field(default_factory=list)
    scored: int = 0
    seconds: float = 0.0

    def params(self, space: Space) -> list[Params]:
        return space.decode_matrix(self.X)

    @property
    def rate(self) -> float:
        """Candidates scored per second."""
        return self.scored / self.seconds if self.seconds > 0 else float("inf")


class BestPerArch:
    """Best predicted row of each architecture seen in any generation: a population converges
    on one network with recipe variants, and a user choosing a model wants different networks."""

    def __init__(self, space) -> None:
        self.space = space
        self.best: dict[str, tuple[float, np.ndarray]] = {}

    def __call__(self, g: int, X: np.ndarray, scores: np.ndarray, stats: dict) -> None:
        arch_of = getattr(self.space, "arch_params", dict)
        for row, score, params in zip(X, scores, self.space.decode_matrix(X), strict=True):
            key = str(sorted(arch_of(params).items()))
            if key not in self.best or score > self.best[key][0]:
                self.best[key] = (float(score), row)

    def top(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        ranked = sorted(self.best.values(), key=lambda v: -v[0])[:k]
        return np.array([r for _, r in ranked]), np.array([s for s, _ in ranked])


def _row_keys(X: np.ndarray) -> np.ndarray:
    """One float per row, equal for equal rows: a projection on fixed random weights. Encoded
    rows sit on a grid, so distinct rows colliding would take a measure-zero coincidence."""
    w = np.random.default_rng(12345).random(X.shape[1]) + 0.5
    return np.round(X, 9) @ w


def _unique_new(X: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Row mask of X: the first of each distinct row, and none already in ``known``."""
    keys = _row_keys(X)
    _, first = np.unique(keys, return_index=True)
    mask = np.zeros(len(X), dtype=bool)
    mask[first] = True
    if len(known):
        mask &= ~np.isin(keys, _row_keys(known))
    return mask


def fine_search(
    space: Space,
    predictor: MatrixPredictor,
    *,
    feasible: Feasible,
    init: np.ndarray | None = None,
    population: int = 64,
    children: int = 4096,
    generations: int = 20,
    sigma: float = 0.15,
    mutation_prob: float | None = None,
    seed: int = 0,
    on_generation: Callable[[int, np.ndarray, np.ndarray, dict[str, Any]], None] | None = None,
) -> FineSearchResult:
    """Evolve ``population`` candidates for ``generations`` generations of ``children``.

    ``init`` (encoded rows, e.g. the coarse stage's best) seeds the first population; random
    feasible candidates fill the rest. Every child satisfies ``feasible``; none repeats.
    ``sigma`` is the first generation's step size, then the 1/5th rule's; ``mutation_prob``
    defaults to 1 / genes (``jointnas.samplers.operators`` has the rules and why).
    ``on_generation(g, X_top, predicted_top, stats)`` lets a caller record each generation;
    ``stats["success"]`` is 0.0 when no child was new and feasible (sigma then stays).
    """
    for name, value in (("population", population), ("children", children)):
        if value < 2:
            raise ValueError(f"{name} must be >= 2, got {value}")
    if generations < 0 or not 0 < sigma <= 1:
        raise ValueError("generations must be >= 0 and sigma in (0, 1]")
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    enc = space.encoder
    genes = Genes.of(enc)
    p_mut = genes.default_mutation_prob() if mutation_prob is None else mutation_prob

    pop = np.empty((0, enc.width))
    if init is not None and len(init):
        pop = enc.snap(np.asarray(init, dtype=float))
        pop = pop[feasible(pop) & _unique_new(pop, np.empty((0, enc.width)))][:population]
    if len(pop) < population:
        want = population - len(pop)
        extra = draw_feasible(
            uniform_rows(enc, rng), want, feasible, max_draws=200_000, first=max(4 * want, 1024)
        )
        pop = np.concatenate([pop, extra])
    scores = predict_rows(predictor, pop)
    scored, history = len(pop), []

    for g in range(generations):
        brood = breed(
            pop,
            scores,
            children,
            rng,
            genes=genes,
            sigma=sigma,
            mutation_prob=p_mut,
            crossover_prob=1.0,
        )
        keep = feasible(brood.rows) & _unique_new(brood.rows, pop)
        kids, parent_best = brood.rows[keep], brood.parent_fitness(scores)[keep]
        kid_scores = predict_rows(predictor, kids)
        scored += len(kids)
        rate = success_rate(kid_scores, parent_best)
        sigma = one_fifth_rule(sigma, rate)
        success = 0.0 if rate is None else rate
        allX, alls = np.concatenate([pop, kids]), np.concatenate([scores, kid_scores])
        order = np.argsort(-alls, kind="stable")[:population]
        pop, scores = allX[order], alls[order]
        stats = {
            "generation": g,
            "best": float(scores[0]),
            "mean": float(scores.mean()),
            "sigma": sigma,
            "success": success,
            "feasible_children": float(keep.mean()),
            "scored": scored,
        }
        history.append(stats)
        if on_generation is not None:
            on_generation(g, pop, scores, stats)
    return FineSearchResult(
        X=pop,
        predicted=scores,
        history=history,
        scored=scored,
        seconds=time.perf_counter() - start,
    )
