"""The genetic operators on encoded rows: the one engine behind both genetic searches.

``AdaptiveGeneticSampler`` (each child becomes a trained Optuna trial) and the pipeline's
predictor-only ``jointnas.runs.search.fine_search`` (thousands of children scored per generation)
both breed with ``breed`` and adapt their step size with ``one_fifth_rule``. They differ in what
happens to a child (trained, or scored), never in how a child is made, so a change to an
operator changes both searches alike.

A candidate is a row of ``Encoder`` features: a numeric gene is one column in [0, 1] (log scale
where its distribution is log, so one step size means the same for a learning rate and a
width), a categorical gene is its one-hot block. The rules, and why each:

* **Selection**: binary tournament between two *distinct* parents, the fitter wins, a tie is a
  coin flip (tree predictors score many candidates alike; equally fit ones get equal chances).
  A child's second parent is drawn from the other parents, so crossover mixes two individuals
  even in a population of two.
* **Crossover**: uniform by gene, each gene from either parent with probability 1/2; a one-hot
  block moves whole (half of one block and half of another is no candidate).
* **Mutation probability**: ``1 / genes`` per gene, and at least one mutable gene mutates. On
  average about one gene changes, the usual rate for a genome of independent genes; a child
  that mutated nothing would be a copy of a parent, a wasted evaluation.
* **Numeric mutation**: a Gaussian step of std ``sigma`` on the [0, 1] scale, *clipped* at the
  bounds. Clipping lands every overshoot exactly on the bound, so a bound is reached, and held,
  as soon as the search leans on it; that is where constrained optima often are (the widest
  network under the limit, the most regularisation the predictor rewards). Reflection, the
  unbiased alternative, only ever approaches a bound: with the predictor of
  ``benchmarks/bench_fine_search.py``, whose optimum lies on the bounds of three recipe genes,
  fine search found the best predicted candidate in 12 of 30 seeded runs with reflection and in
  17 with clipping (6 vs 17 without the grid step below); on smooth random landscapes neither
  was better. A step on a discrete gene
  that snaps back onto the parent's grid point moves one grid point in the step's direction
  instead (the other way at a bound), so a mutated gene changes even when ``sigma`` is small
  against its grid.
* **Categorical mutation**: another choice, uniformly (choices have no order to step along).
* **Step size**: Rechenberg's 1/5th success rule. Success is the fraction of judged children
  that beat their better parent: above 1/5 the steps are too timid and sigma grows by 1.22,
  below 1/5 they overshoot and it shrinks by 1.22, at exactly 1/5 (or with no child to judge)
  it stays; sigma stays within [0.01, 0.5].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from jointnas.spaces.encoding import Encoder

SIGMA_MIN = 0.01
SIGMA_MAX = 0.5
SIGMA_FACTOR = 1.22
SUCCESS_TARGET = 0.2


def one_fifth_rule(sigma: float, success: float | None) -> float:
    """Rechenberg's 1/5th rule: the next sigma after a generation with this success rate
    (``None``: no child could be judged, which says nothing either way)."""
    if success is not None and success > SUCCESS_TARGET:
        sigma *= SIGMA_FACTOR
    elif success is not None and success < SUCCESS_TARGET:
        sigma /= SIGMA_FACTOR
    return float(min(max(sigma, SIGMA_MIN), SIGMA_MAX))


def beats_parent(children: ArrayLike, parents: ArrayLike) -> np.ndarray:
    """The 1/5th rule's success: a child strictly fitter than its better parent (fitness is
    higher-is-better; ``parents`` holds each child's better parent)."""
    return np.asarray(children, dtype=float) > np.asarray(parents, dtype=float)


def success_rate(children: ArrayLike, parents: ArrayLike) -> float | None:
    """Fraction of children that beat their better parent; None without children."""
    won = beats_parent(children, parents)
    return float(np.mean(won)) if len(won) else None


@dataclass(frozen=True, eq=False)
class _Numeric:
    """The numeric genes as arrays, one entry per gene, so that a mutation snaps all of them
    in a few array operations (a Python loop per gene cost 25 ms of a 75 ms coarse proposal
    on the 24-parameter space). Values follow ``Encoder``'s rules exactly."""

    genes: np.ndarray  # gene index of each numeric gene
    columns: np.ndarray  # its encoded column
    low: np.ndarray  # distribution bounds
    high: np.ndarray
    lo: np.ndarray  # encoded bounds: log(low), log(high) where the distribution is log
    hi: np.ndarray
    log: np.ndarray  # bool
    step: np.ndarray  # grid step, nan where continuous
    integer: np.ndarray  # bool

    @classmethod
    def of(cls, genes: list[tuple[int, int, IntDistribution | FloatDistribution]]) -> _Numeric:
        dists = [d for _, _, d in genes]
        log = np.array([d.log for d in dists], dtype=bool)
        low = np.array([float(d.low) for d in dists])
        high = np.array([float(d.high) for d in dists])
        return cls(
            genes=np.array([g for g, _, _ in genes], dtype=np.int64),
            columns=np.array([c for _, c, _ in genes], dtype=np.int64),
            low=low,
            high=high,
            lo=np.array([math.log(d.low) if d.log else float(d.low) for d in dists]),
            hi=np.array([math.log(d.high) if d.log else float(d.high) for d in dists]),
            log=log,
            step=np.array([np.nan if d.step is None else float(d.step) for d in dists]),
            integer=np.array([isinstance(d, IntDistribution) for d in dists], dtype=bool),
        )

    @property
    def discrete(self) -> np.ndarray:
        return ~np.isnan(self.step)  # every IntDistribution has a step

    def values(self, U: np.ndarray) -> np.ndarray:
        """Encoded entries (n, genes) -> values on each gene's grid (``Encoder.columns``)."""
        raw = self.lo + np.clip(U, 0.0, 1.0) * (self.hi - self.lo)
        raw[:, self.log] = np.exp(raw[:, self.log])
        with np.errstate(invalid="ignore"):
            stepped = self.low + np.round((raw - self.low) / self.step) * self.step
        return np.clip(np.where(self.discrete, stepped, raw), self.low, self.high)

    def encode(self, V: np.ndarray) -> np.ndarray:
        """Values (n, genes) -> encoded entries (``Encoder.encode_columns``)."""
        V = V.copy()
        V[:, self.log] = np.log(V[:, self.log])
        span = self.hi - self.lo
        return np.where(span > 0, (V - self.lo) / np.where(span > 0, span, 1.0), 0.0)

    def step_from(self, value: np.ndarray, k: np.ndarray, up: np.ndarray) -> np.ndarray:
        """One grid point from ``value`` (of gene ``k``), upwards where ``up``, the other way at
        a bound."""
        low, high, step = self.low[k], self.high[k], self.step[k]
        d = np.where(up, step, -step)  # integers: a step of the distribution
        new = value + d
        as_int = np.where((new < low) | (new > high), value - d, new)
        g = np.round((value - low) / step)  # floats: a step on the grid from low
        g_max = np.round((high - low) / step)
        u = np.where(up, 1, -1)
        g = np.where((g + u < 0) | (g + u > g_max), g - u, g + u)
        return np.where(self.integer[k], as_int, np.minimum(low + g * step, high))


@dataclass(frozen=True, eq=False)
class Genes:
    """Where each gene of an encoded space lives, derived once from its ``Encoder``."""

    encoder: Encoder
    of_column: np.ndarray  # (width,) gene index of each encoded column
    numeric: _Numeric
    blocks: tuple[tuple[int, slice], ...]  # categorical genes: gene index, one-hot columns
    mutable: np.ndarray  # (genes,) whether a gene has more than one value

    @classmethod
    def of(cls, encoder: Encoder) -> Genes:
        of_column = np.empty(encoder.width, dtype=np.int64)
        numeric, blocks, mutable = [], [], []
        for g, (name, dist) in enumerate(encoder.distributions.items()):
            cols = np.flatnonzero(encoder.feature_mask([name]))
            of_column[cols] = g
            if isinstance(dist, CategoricalDistribution):
                blocks.append((g, slice(int(cols[0]), int(cols[-1]) + 1)))
                mutable.append(len(dist.choices) > 1)
            else:
                assert isinstance(dist, (IntDistribution, FloatDistribution))
                numeric.append((g, int(cols[0]), dist))
                mutable.append(dist.high > dist.low)
        return cls(
            encoder=encoder,
            of_column=of_column,
            numeric=_Numeric.of(numeric),
            blocks=tuple(blocks),
            mutable=np.asarray(mutable, dtype=bool),
        )

    @property
    def count(self) -> int:
        return len(self.mutable)

    def default_mutation_prob(self) -> float:
        """``1 / genes``: about one mutated gene per child (see the module docstring)."""
        return 1.0 / self.count


@dataclass(frozen=True, eq=False)
class Brood:
    """Children bred from a parent matrix, and how each came about."""

    rows: np.ndarray  # (n, width) children, snapped onto valid encoded rows
    first: np.ndarray  # (n,) index of the first parent
    second: np.ndarray  # (n,) index of the second parent; == first where not crossed
    crossed: np.ndarray  # (n,) bred from two distinct parents
    from_second: np.ndarray  # (n, genes) gene inherited from the second parent
    mutated: np.ndarray  # (n, genes) gene mutated

    def parent_fitness(self, fitness: np.ndarray) -> np.ndarray:
        """Fitness of each child's better parent: what the 1/5th rule compares it with."""
        fitness = np.asarray(fitness, dtype=float)
        return np.where(
            self.crossed,
            np.maximum(fitness[self.first], fitness[self.second]),
            fitness[self.first],
        )


def tournament(
    fitness: np.ndarray,
    n: int,
    rng: np.random.Generator,
    *,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """``n`` binary tournaments: index of the fitter of two distinct random parents (either, at
    random, on a tie). ``exclude[k]`` is left out of tournament ``k``; a lone parent wins all."""
    fitness = np.asarray(fitness, dtype=float)
    pool = len(fitness) - (exclude is not None)
    if pool < 1:  # one parent, excluded: nothing else to pick
        assert exclude is not None
        return np.array(exclude, dtype=np.int64, copy=True)
    if pool == 1:
        i = j = np.zeros(n, dtype=np.int64)
    else:
        i = rng.integers(pool, size=n)
        j = (i + 1 + rng.integers(pool - 1, size=n)) % pool
    if exclude is not None:  # indices of the pool without exclude[k] -> parent indices
        i, j = i + (i >= exclude), j + (j >= exclude)
    return np.where(fitness[j] > fitness[i], j, i)  # i is the random one of the two on a tie


def breed(
    X: np.ndarray,
    fitness: np.ndarray,
    n: int,
    rng: np.random.Generator,
    *,
    genes: Genes,
    sigma: float,
    mutation_prob: float,
    crossover_prob: float,
) -> Brood:
    """``n`` children of the encoded parents ``X`` (valid encoded rows; higher ``fitness`` is
    better): tournament, uniform crossover with probability ``crossover_prob`` (else a copy of
    the first parent), then mutation; the rules are in the module docstring. Children are valid
    encoded rows; only mutated genes are snapped (the others are copied from a parent)."""
    X = np.asarray(X, dtype=float)
    first = tournament(fitness, n, rng)
    second = tournament(fitness, n, rng, exclude=first)
    crossed = (rng.random(n) < crossover_prob) & (second != first)
    from_second = (rng.random((n, genes.count)) < 0.5) & crossed[:, None]
    kids = X[first]
    np.copyto(kids, X[second], where=np.ascontiguousarray(from_second[:, genes.of_column]))

    mutated = (rng.random((n, genes.count)) < mutation_prob) & genes.mutable
    if genes.mutable.any():  # at least one mutable gene per child
        idle = np.flatnonzero(~mutated.any(axis=1))
        choices = np.flatnonzero(genes.mutable)
        mutated[idle, choices[rng.integers(len(choices), size=len(idle))]] = True
    _mutate_numeric(kids, mutated, genes, sigma, rng)
    for g, block in genes.blocks:
        rows = np.flatnonzero(mutated[:, g])
        if not len(rows):
            continue
        current = np.argmax(kids[rows, block], axis=1)
        new = rng.integers(block.stop - block.start - 1, size=len(rows))
        kids[rows, block] = 0.0
        kids[rows, block.start + new + (new >= current)] = 1.0
    return Brood(
        rows=kids,
        first=first,
        second=np.where(crossed, second, first),
        crossed=crossed,
        from_second=from_second,
        mutated=mutated,
    )


def _mutate_numeric(
    kids: np.ndarray, mutated: np.ndarray, genes: Genes, sigma: float, rng: np.random.Generator
) -> None:
    """Gaussian steps, clipped, on the mutated numeric entries of ``kids`` (in place), each
    snapped onto its gene's grid; a discrete value that snapped back moves one grid point."""
    num = genes.numeric
    if not len(num.genes):
        return
    mask = mutated[:, num.genes]
    rows, which = np.nonzero(mask)
    Z = np.zeros(mask.shape)
    Z[rows, which] = rng.standard_normal(len(rows))
    parent = kids[:, num.columns]
    values = num.values(np.clip(parent + sigma * Z, 0.0, 1.0))
    before = num.values(parent)
    r, k = np.nonzero(mask & num.discrete & (values == before))
    values[r, k] = num.step_from(before[r, k], k, Z[r, k] >= 0)
    kids[:, num.columns] = np.where(mask, num.encode(values), parent)
