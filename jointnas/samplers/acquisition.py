"""Where the coarse search looks next: an acquisition, and the candidates it is maximised over.

The acquisition turns the ensemble's members (``surrogate.Ensemble``) into one score per
candidate: ``ei`` (expected improvement over the best trial, with the members' mean and spread
as a normal belief, SMAC's choice), ``thompson`` (one member, drawn per proposal, BANANAS's) or
``mean`` (the members' mean, what the sampler did before it had a spread).

It is maximised over three sets, all feasible by construction (the constraint is evaluated on
whole batches of encoded rows):

* a quasi-random pool, scrambled Sobol over the space (global coverage);
* one- and two-gene mutations of the best trials (``operators.breed``: the genetic engine's
  operators, so a gene mutates the same way everywhere); "mutation is all you need" on NAS
  benchmarks (BANANAS), and SMAC's local search starts from the incumbents as well;
* a short hill-climb: mutations of the best-scored candidates, a few rounds, keeping what
  scores higher (GPSampler's local search on the acquisition, here by mutation, which works on
  categorical, integer and continuous genes alike).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr

from jointnas.samplers.operators import Genes, breed

ACQUISITIONS = ("ei", "thompson", "mean")

#: numeric step sizes on the [0, 1] feature scale: a near and a far neighbourhood
_SIGMAS = (0.05, 0.2)

Feasible = Callable[[np.ndarray], np.ndarray]  # encoded rows -> boolean mask


def score(
    model: Any, X: np.ndarray, best: float, kind: str, rng: np.random.Generator
) -> np.ndarray:
    """Acquisition value of each encoded row under ``model`` (``mean_std``/``draw``); a row
    with a non-finite prediction scores -inf. ``best`` is the best target seen so far."""
    if kind == "thompson":
        out = np.asarray(model.draw(X, rng), dtype=float)
    else:
        mean, std = (np.asarray(a, dtype=float) for a in model.mean_std(X))
        if kind == "mean":
            out = mean.copy()
        elif kind == "ei":
            out = tie_break(expected_improvement(mean - best, std), mean)
        else:
            raise ValueError(f"acquisition must be one of {ACQUISITIONS}, got {kind!r}")
    return np.where(np.isfinite(out), out, -np.inf)


def expected_improvement(gap: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``E[max(f - best, 0)]`` for ``f ~ N(best + gap, std**2)``, elementwise (broadcast);
    ``max(gap, 0)`` where the spread is 0."""
    gap, std = np.broadcast_arrays(np.asarray(gap, float), np.asarray(std, float))
    sure = ~(std > 1e-12)
    safe = np.where(sure, 1.0, std)
    u = gap / safe
    out = gap * ndtr(u) + safe * np.exp(-0.5 * u * u) / np.sqrt(2 * np.pi)
    out[sure] = np.maximum(gap[sure], 0.0)
    return out


def tie_break(ei: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Where no candidate is expected to improve (EI underflows to 0), the mean decides."""
    finite = np.isfinite(mean)
    if finite.any():
        return ei + 1e-9 * (mean - mean[finite].min())
    return ei


@dataclass(frozen=True)
class Search:
    """How hard the acquisition is maximised; each number is a count of candidates."""

    mutants: int = 512  # mutations of the best trials
    incumbents: int = 5  # best trials that are mutated
    climb_steps: int = 3  # hill-climb rounds
    climb_starts: int = 5  # best-scored candidates mutated per round
    climb_mutants: int = 64  # mutations per start per round


def mutate(
    X: np.ndarray, n: int, genes: Genes, rng: np.random.Generator, feasible: Feasible
) -> np.ndarray:
    """About ``n`` feasible one- and two-gene mutations of the rows of ``X`` (each row mutated
    equally often), at a near and a far step size."""
    if not len(X) or n < 1:
        return np.empty((0, genes.encoder.width))
    parts = []
    fitness = np.zeros(len(X))
    per = max(1, n // (2 * len(_SIGMAS)))
    for genes_changed in (1, 2):
        prob = min(1.0, genes_changed / genes.count)
        for sigma in _SIGMAS:
            # tournaments on equal fitness pick parents uniformly; crossover off: mutation only
            kids = breed(
                X,
                fitness,
                per,
                rng,
                genes=genes,
                sigma=sigma,
                mutation_prob=prob,
                crossover_prob=0.0,
            ).rows
            parts.append(kids)
    rows = np.concatenate(parts)
    return rows[feasible(rows)]


def maximise(
    acquisition: Callable[[np.ndarray], np.ndarray],
    pool: np.ndarray,
    incumbents: np.ndarray,
    *,
    genes: Genes,
    rng: np.random.Generator,
    feasible: Feasible,
    search: Search,
    starts: Callable[[np.ndarray, int], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Every candidate looked at and its acquisition value, best first (ties keep pool order).

    ``starts(ranked, k)`` picks the hill-climb's ``k`` starting rows from the candidates, best
    first (default: the first ``k``; with a lazily checked constraint, the first feasible)."""
    pick = starts or (lambda ranked, k: ranked[:k])
    cands = [pool, mutate(incumbents[: search.incumbents], search.mutants, genes, rng, feasible)]
    X = np.concatenate(cands)
    s = acquisition(X)
    for _ in range(search.climb_steps):
        roots = pick(X[np.argsort(-s, kind="stable")], search.climb_starts)
        new = mutate(roots, search.climb_mutants * len(roots), genes, rng, feasible)
        if not len(new):
            break
        X, s = np.concatenate([X, new]), np.concatenate([s, acquisition(new)])
    order = np.argsort(-s, kind="stable")
    return X[order], s[order]
