"""The constraint vocabulary: resource limits, which encoded candidates meet them, and draws.

Every stage refuses the same candidates (the objective before training, the samplers before
proposing, the fine search before scoring, EDF before enqueueing), so what "feasible" means is
said once here: ``Limits`` (cost - limit <= 0, Optuna's convention), ``feasible_mask`` on a
space's encoded rows, and ``draw_feasible``, the one capped rejection loop that draws seeded
candidates in chunks until enough pass. The module imports numpy only (spaces are duck-typed),
so a search on a shipped predictor checks limits without paying torch's import.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import ArrayLike

from jointnas.errors import InfeasibleConstraintError

if TYPE_CHECKING:
    from jointnas.spaces.base import Space
    from jointnas.spaces.encoding import Encoder
    from jointnas.spaces.nets.blocks import Cost

#: encoded rows (n, width) -> bool row mask (n,)
Mask = Callable[[np.ndarray], np.ndarray]
#: k -> k fresh candidate rows, continuing one seeded stream (uniform or Sobol)
Rows = Callable[[int], np.ndarray]


class TaskLike(Protocol):
    """What a candidate is built for (``predictors.base.Task`` is one): the cost depends on it."""

    num_classes: int
    in_channels: int


_MEASURE = "measure"  # Limits field metadata: how the limited quantity is read off a Cost


def _limit(measure: Callable[[Cost], Any]) -> Any:
    """A ``Limits`` field: an optional upper bound on ``measure(cost)``. A new kind of limit
    (e.g. latency) is one more such field; names, values, masks and bands follow from it."""
    return field(default=None, metadata={_MEASURE: measure})


#: constraint names of RegNet's complexity limits (``Limits(regnet=True)``)
REGNET_KEYS = ("regnet_acts", "regnet_params")


def regnet_max_acts(flops: Any) -> Any:
    """RegNet's activation cap for a model of ``flops`` multiply-adds: 6.5 * sqrt(f) M
    activations, f in GFLOPs (Radosavovic et al., 2020, the design-space comparison's
    constraint), as a count: 6.5e6 * sqrt(flops / 1e9). Floats or per-candidate arrays."""
    return 6.5e6 * np.sqrt(np.asarray(flops, dtype=float) / 1e9)


def regnet_max_params(flops: Any) -> Any:
    """RegNet's parameter cap for a model of ``flops`` multiply-adds: 3 + 5.5 * f M params,
    f in GFLOPs, as a count: 3e6 + 5.5e6 * flops / 1e9. Floats or per-candidate arrays."""
    return 3e6 + 5.5e6 * np.asarray(flops, dtype=float) / 1e9


def _plain(value: Any) -> Any:
    """A 0-d numpy result as a Python float (JSON, Optuna); arrays as they are."""
    return float(value) if np.ndim(value) == 0 else value


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Resource limits; ``None`` means unconstrained. Constraint values are cost - limit.

    ``regnet`` adds RegNet's complexity limits, relative to each candidate's own FLOPs f (in
    GF): acts <= 6.5 * sqrt(f) M and params <= 3 + 5.5 * f M, as two more constraints
    (``REGNET_KEYS``) whose values are counts like ``--max-acts``'s: acts - 6.5e6 * sqrt(f)
    and params - (3e6 + 5.5e6 * f)."""

    mflops: float | None = _limit(lambda c: c.mflops)
    params: int | None = _limit(lambda c: c.params)
    acts: int | None = _limit(lambda c: c.acts)
    regnet: bool = False

    def __post_init__(self) -> None:
        for key in LIMIT_KEYS:
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise ValueError(f"--max-{key.replace('_', '-')} must be > 0, got {value}")
        if not isinstance(self.regnet, bool):
            raise ValueError(f"regnet must be True or False, got {self.regnet!r}")

    def active(self) -> dict[str, float]:
        """The fixed limits that are set (name -> limit); RegNet's come after them."""
        return {k: float(getattr(self, k)) for k in LIMIT_KEYS if getattr(self, k) is not None}

    def names(self) -> list[str]:
        """Constraint names, in ``values()`` order: the fixed limits, then RegNet's."""
        return [*self.active(), *(REGNET_KEYS if self.regnet else ())]

    def fixed_values(self, c: Cost) -> list[Any]:
        """cost - limit of each fixed limit, in ``active()`` order."""
        return [measure(key, c) - limit for key, limit in self.active().items()]

    def values(self, c: Cost) -> list[Any]:
        """Constraint values (feasible when all <= 0), in ``names()`` order; floats for one
        candidate, arrays for a batch (``Space.cost_batch``)."""
        values = self.fixed_values(c)
        if self.regnet:
            values.append(_plain(np.asarray(c.acts, dtype=float) - regnet_max_acts(c.flops)))
            values.append(_plain(np.asarray(c.params, dtype=float) - regnet_max_params(c.flops)))
        return values

    def matrix(self, c: Cost) -> np.ndarray:
        """``values`` of a batch cost as one (rows, constraints) float matrix: the shape the
        samplers' ``constraint_batch`` and ``values_mask`` take."""
        rows = len(np.atleast_1d(np.asarray(c.flops)))
        values = self.values(c)
        if not values:
            return np.zeros((rows, 0))
        return np.stack([np.broadcast_to(np.asarray(v, dtype=float), (rows,)) for v in values], 1)

    def describe(self) -> dict[str, Any]:
        """JSON-able, for people and the study attrs: each limit, RegNet's as formulas."""
        out: dict[str, Any] = dict(self.active())
        if self.regnet:
            out["regnet_acts"] = "acts <= 6.5 * sqrt(GFLOPs) M"
            out["regnet_params"] = "params <= 3 + 5.5 * GFLOPs M"
        return out


_MEASURES: dict[str, Callable[[Cost], Any]] = {
    f.name: f.metadata[_MEASURE] for f in fields(Limits) if _MEASURE in f.metadata
}
#: names of the fixed limits, in constraint order (also the cost user attrs of a trial)
LIMIT_KEYS = tuple(_MEASURES)


def measure(key: str, c: Cost) -> Any:
    """The quantity limit ``key`` bounds, read off a cost (scalar or per-candidate arrays)."""
    if key not in _MEASURES:
        raise ValueError(f"unknown limit {key!r}; choose one of {list(LIMIT_KEYS)}")
    return _MEASURES[key](c)


@dataclass(frozen=True)
class Band:
    """Keep only candidates whose ``key`` (a ``LIMIT_KEYS`` quantity) lies in [low, high],
    inclusive: a lower bound too, as comparing design spaces needs (no space wins by being
    bigger, Radosavovic et al., 2020)."""

    low: float
    high: float
    key: str = "mflops"

    def __post_init__(self) -> None:
        if self.key not in _MEASURES:
            raise ValueError(f"unknown band {self.key!r}; choose one of {list(LIMIT_KEYS)}")
        if not (np.isfinite(self.low) and np.isfinite(self.high) and self.low <= self.high):
            raise ValueError(f"band {self.low:g}..{self.high:g}: need finite low <= high")

    def contains(self, c: Cost) -> np.ndarray:
        """Row mask of a batch cost: in the band."""
        value = np.asarray(measure(self.key, c), dtype=float)
        return (value >= self.low) & (value <= self.high)

    def __str__(self) -> str:
        return f"{self.low:g}..{self.high:g} {'MFLOPs' if self.key == 'mflops' else self.key}"


def is_feasible(values: Sequence[float]) -> bool:
    """Optuna's convention for one candidate: feasible when every constraint value is <= 0."""
    return all(v <= 0 for v in values)


def values_mask(values: ArrayLike, rows: int, *, source: str = "the constraint") -> np.ndarray:
    """``is_feasible`` for a batch: constraint values (rows, constraints), or (rows,) for one
    constraint, to a row mask; a wrong shape is refused, not broadcast over the wrong rows."""
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or len(values) != rows:
        raise ValueError(
            f"{source} returned shape {values.shape} for {rows} rows; expected (rows, constraints)"
        )
    return np.all(values <= 0, axis=1)


def task_kwargs(task: TaskLike | Mapping[str, int]) -> dict[str, int]:
    """``num_classes`` and ``in_channels`` of a task object or mapping, as cost keywords."""
    if isinstance(task, Mapping):
        return {"num_classes": int(task["num_classes"]), "in_channels": int(task["in_channels"])}
    return {"num_classes": int(task.num_classes), "in_channels": int(task.in_channels)}


def feasible_mask(
    X: np.ndarray,
    space: Space,
    task: TaskLike | Mapping[str, int],
    limits: Limits | None = None,
    *,
    band: Band | None = None,
) -> np.ndarray:
    """Row mask of a space's encoded candidates within ``limits`` (and in ``band``), by the
    space's vectorised analytic cost: the same test as the objective's, for thousands of rows
    per call."""
    X = np.asarray(X, dtype=float)
    ok = np.ones(len(X), dtype=bool)
    if (limits is None or not limits.names()) and band is None:
        return ok  # nothing to check: no cost needed (a space may have none)
    c = space.cost_batch(X, **task_kwargs(task))
    if limits is not None and limits.names():
        ok &= values_mask(limits.matrix(c), len(X))
    if band is not None:
        ok &= band.contains(c)
    return ok


def cost_feasibility(
    space: Space,
    limits: Limits | None = None,
    *,
    num_classes: int,
    in_channels: int,
    band: Band | None = None,
) -> Mask:
    """``feasible_mask`` bound to one space, task and limits: the ``feasible`` argument of the
    fine search and the ``accept`` of ``draw_feasible``."""
    task = {"num_classes": num_classes, "in_channels": in_channels}

    def feasible(X: np.ndarray) -> np.ndarray:
        return feasible_mask(X, space, task, limits, band=band)

    return feasible


def uniform_rows(encoder: Encoder, rng: np.random.Generator) -> Rows:
    """Uniform random encoded rows from ``rng``'s stream. Rows follow the stream, not the chunk
    sizes, so the accepted rows of a draw are the same however it is chunked."""

    def rows(k: int) -> np.ndarray:
        return encoder.encode_columns(encoder.unit_columns(rng.random((k, len(encoder.names)))))

    return rows


def chunk_size(drawn: int, budget: int, first: int) -> int:
    """Next chunk of a draw: the largest power of two <= ``first`` first, then as many as drawn
    so far. Totals stay powers of two (a Sobol sequence's balance) until ``budget`` (draws
    left) cuts the last chunk short, and a tight constraint costs at most twice what it needs."""
    if drawn == 0:
        return 1 << (max(min(first, budget), 1).bit_length() - 1)
    return min(drawn, budget)


class DrawShortfall(InfeasibleConstraintError):
    """``draw_feasible`` ran out of draws; the counts let a caller say how rare its target is."""

    def __init__(self, message: str, *, drawn: int, accepted: int, kept: int, wanted: int):
        super().__init__(message)
        self.drawn, self.accepted, self.kept, self.wanted = drawn, accepted, kept, wanted


def draw_feasible(
    rows: Rows,
    n: int,
    accept: Mask,
    *,
    max_draws: int,
    first: int = 256,
    enough: int | None = None,
    distinct: Callable[[np.ndarray], Sequence[Hashable]] | None = None,
    kind: str = "random",
    what: str = "the constraint",
    hint: str = "loosen the limits",
) -> np.ndarray:
    """The first ``n`` rows of the stream ``rows`` that ``accept`` passes, drawn in chunks
    (``chunk_size``) until ``n`` pass or ``max_draws`` rows were drawn.

    ``distinct(X)`` gives each accepted row a key; a row whose key an earlier one had is
    dropped. Fewer than ``enough`` (default ``n``) rows: ``DrawShortfall``, saying how many of
    how many ``kind`` draws satisfied ``what``, then ``hint``; otherwise the rows found, at most
    ``n``. The result is a prefix of the result for a larger ``n`` (same stream)."""
    if n < 1 or max_draws < 1 or first < 1:
        raise ValueError(f"need n, max_draws and first >= 1, got {n}, {max_draws}, {first}")
    needed = n if enough is None else min(max(enough, 0), n)
    found: list[np.ndarray] = []
    seen: set[Hashable] = set()
    drawn = accepted = kept = 0
    while kept < n and drawn < max_draws:
        X = rows(chunk_size(drawn, max_draws - drawn, first))
        if not len(X):
            raise ValueError("rows(k) returned no rows: a draw needs a stream that goes on")
        drawn += len(X)
        mask = np.asarray(accept(X), dtype=bool)
        if mask.shape != (len(X),):
            raise ValueError(f"accept returned shape {mask.shape} for {len(X)} rows")
        X = X[mask]
        accepted += len(X)
        if distinct is not None and len(X):
            fresh = []
            for i, key in enumerate(distinct(X)):
                if key not in seen:
                    seen.add(key)
                    fresh.append(i)
            X = X[fresh]
        found.append(X)
        kept += len(X)
    if kept < needed:
        unique = f" ({kept} distinct)" if distinct is not None else ""
        raise DrawShortfall(
            f"{accepted} of {drawn} {kind} candidates satisfied {what}{unique}, {needed} needed: "
            f"{hint}",
            drawn=drawn,
            accepted=accepted,
            kept=kept,
            wanted=needed,
        )
    return np.concatenate(found)[:n]
