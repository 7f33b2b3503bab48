"""What a CoarseSampler reads from its study: which candidates are held, which trained.

Pure functions of the study's trials and the space's encoder, so the sampler's proposal logic
stays apart from the bookkeeping: ``taken`` (candidates no new proposal may repeat: running,
waiting and completed trials, their fixed params and recorded proposals) and ``training_set``
(the completed trials the predictor fits on, in completion order).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from jointnas.constraints import chunk_size
from jointnas.samplers.candidates import FIRST_CHUNK, Checker, FeasibilityGuess, sobol
from jointnas.samplers.operators import Genes
from jointnas.spaces.encoding import Encoder, Params, check_value

#: system attr of a trial: the full candidate the sampler proposed (conditional objectives
#: may ask for only part of it)
PROPOSAL_ATTR = "coarse:proposal"

_LOG = optuna.logging.get_logger(__name__)


def value_key(value: Any) -> tuple[str, Any]:
    """Hashable, type-strict form of a param value (1, 1.0 and True must not collide)."""
    return (type(value).__name__, value)


class Taken:
    """Params that no new proposal may repeat, grouped by the names they fix.

    A trial that asked for only some parameters (a conditional objective) blocks every
    candidate that agrees with it on those: the rest did not influence its result.
    """

    def __init__(self) -> None:
        self._groups: dict[tuple[str, ...], set[tuple[tuple[str, Any], ...]]] = {}

    def copy(self) -> Taken:
        out = Taken()
        out._groups = {names: set(keys) for names, keys in self._groups.items()}
        return out

    def add(self, record: Mapping[str, Any]) -> None:
        if record:
            names = tuple(record)
            self._groups.setdefault(names, set()).add(tuple(value_key(record[n]) for n in names))

    def __contains__(self, params: Mapping[str, Any]) -> bool:
        return any(
            tuple(value_key(params[n]) for n in names) in keys
            for names, keys in self._groups.items()
        )


def valid_subset(encoder: Encoder, params: Mapping[str, Any]) -> Params:
    """The entries of ``params`` that are valid values of this space, normalised (an
    enqueued ``x=1`` for a float ``x`` must compare equal to the proposal ``1.0``)."""
    out: Params = {}
    for name, value in params.items():
        dist = encoder.distributions.get(name)
        if dist is None:
            continue
        try:
            out[name] = check_value(name, dist, value)
        except ValueError:
            continue
    return out


class Memo:
    """What was read from each *completed* trial of one space, which never changes again: its
    record, its training-set row and their encoded row. Without it, a proposal in a study
    of 1,000 trials spent most of its time re-validating the same params."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.records: dict[int, Params | None] = {}
        # the usable completed trials read so far, in completion order, and every trial id read
        self.trained: list[tuple[datetime, int, Params, float]] = []
        self.trained_ids: set[int] = set()
        self.rows: dict[int, np.ndarray] = {}
        self.taken = Taken()  # the records of the completed trials in ``taken_ids``
        self.taken_ids: set[int] = set()

    def encode(self, items: Sequence[tuple[int, Params]]) -> np.ndarray:
        """Encoded rows of ``(trial number, params)`` training items (``training_set``'s,
        validated there), each encoded once."""
        new = [(n, p) for n, p in items if n not in self.rows]
        if new:
            rows = self.encoder.encode([p for _, p in new], validated=True)
            for (n, _), row in zip(new, rows, strict=True):
                self.rows[n] = row
        if not items:
            return np.zeros((0, self.encoder.width))
        return np.stack([self.rows[n] for n, _ in items])


def record(encoder: Encoder, trial: FrozenTrial, memo: Memo | None = None) -> Params | None:
    """What ``trial`` holds in this space: its params; for an unfinished trial also its
    fixed params and its recorded proposal (what it will ask for). None if out of space."""
    done = memo is not None and trial.state == TrialState.COMPLETE
    if done and trial._trial_id in memo.records:
        return memo.records[trial._trial_id]
    out = _record(encoder, trial)
    if done:
        memo.records[trial._trial_id] = out
    return out


def _record(encoder: Encoder, trial: FrozenTrial) -> Params | None:
    record: Params = {}
    if trial.state != TrialState.COMPLETE:
        record.update(trial.system_attrs.get("fixed_params", {}))
        record.update(trial.system_attrs.get(PROPOSAL_ATTR, {}))
    record.update(trial.params)
    record = {n: v for n, v in record.items() if n in encoder.distributions}
    valid = valid_subset(encoder, record)
    return valid if len(valid) == len(record) else None


def held_candidates(
    encoder: Encoder, trials: Sequence[FrozenTrial], *, exclude: int, memo: Memo | None = None
) -> Taken:
    """What no new proposal may repeat. With a ``memo``, the completed trials' records are
    added to the memo's ``Taken`` once and copied per proposal (at 1,000 trials, rebuilding it
    cost 30 ms per proposal)."""
    done = memo.taken if memo is not None else Taken()
    unfinished = []
    for t in trials:
        if t._trial_id == exclude:
            continue
        if t.state == TrialState.COMPLETE:
            if memo is None or t._trial_id not in memo.taken_ids:
                rec = record(encoder, t, memo)
                if rec:
                    done.add(rec)
                if memo is not None:
                    memo.taken_ids.add(t._trial_id)
        elif t.state in (TrialState.RUNNING, TrialState.WAITING):
            unfinished.append(t)
    held = done.copy() if memo is not None else done
    for t in unfinished:
        rec = record(encoder, t, memo)
        if rec:
            held.add(rec)
    return held


def training_set(
    encoder: Encoder, trials: Sequence[FrozenTrial], memo: Memo | None = None
) -> list[tuple[int, Params, float]]:
    """Usable completed trials, ``(number, params, value)``, in completion order.

    A parameter the objective never asked for (conditional spaces) is filled in from the
    trial's recorded proposal: it did not affect the value. Trials outside the space, with
    a non-finite value or without a complete candidate are left out.
    """
    memo = memo if memo is not None else Memo(encoder)
    new = False
    for t in trials:
        if t.state != TrialState.COMPLETE or t._trial_id in memo.trained_ids:
            continue
        memo.trained_ids.add(t._trial_id)
        if t.values is None or len(t.values) != 1 or not math.isfinite(float(t.values[0])):
            continue
        params = _training_params(encoder, t)
        if params is not None:
            when = t.datetime_complete or datetime.min
            memo.trained.append((when, t.number, params, float(t.values[0])))
            new = True
    if new:
        memo.trained.sort(key=lambda r: (r[0], r[1]))
    return [(number, params, value) for _, number, params, value in memo.trained]


def _training_params(encoder: Encoder, t: FrozenTrial) -> Params | None:
    merged = {**t.system_attrs.get(PROPOSAL_ATTR, {}), **t.params}
    try:
        return encoder.validate({n: v for n, v in merged.items() if n in encoder.distributions})
    except ValueError:
        return None


def pending_candidates(
    encoder: Encoder, trials: Sequence[FrozenTrial], *, exclude: int
) -> list[tuple[int, Params]]:
    """Running and waiting trials whose whole candidate in this space is known (their recorded
    proposal): the fantasised observations of the surrogate, ``(number, params)``."""
    out = []
    for t in trials:
        if t._trial_id == exclude or t.state not in (TrialState.RUNNING, TrialState.WAITING):
            continue
        rec = record(encoder, t)
        if rec and len(rec) == len(encoder.names):
            out.append((t.number, encoder.validate(rec)))
    return out


def first_free(
    enc: Encoder, ranked: np.ndarray, taken: Taken, checker: Checker | None = None
) -> Params | None:
    """The first of ``ranked`` (encoded rows, best first) that no other trial holds; the first
    one where a small discrete space is used up (repeating beats stopping the study).

    With a lazy ``checker`` the rows are unchecked: the first *feasible* free row, checked in
    order (None when no row of ``ranked`` is feasible)."""
    lazy = checker is not None and checker.lazy
    repeat: Params | None = None
    for start in range(0, len(ranked), 64):
        chunk = ranked[start : start + 64]
        decoded = enc.decode(chunk)
        free = [i for i, params in enumerate(decoded) if params not in taken]
        if not lazy:
            if free:
                return decoded[free[0]]
            continue
        assert checker is not None
        hit = checker.in_order(chunk[free], 1)
        if len(hit):
            return decoded[free[int(hit[0])]]
        if repeat is None and len(free) < len(chunk):
            held = checker.in_order(chunk, 1)
            repeat = decoded[int(held[0])] if len(held) else None
    if lazy and repeat is None:
        return None
    _LOG.warning(
        f"all {len(ranked)} candidates looked at are held by running, waiting or completed "
        "trials; proposing one again"
    )
    return repeat if lazy else enc.decode(ranked[:1])[0]


class SpaceState:
    """What a CoarseSampler derives from one search space: encoder, genes, the startup
    trials' shared Sobol scan, the memo of completed trials, the cached surrogate."""

    def __init__(self, distributions: Mapping[str, BaseDistribution], seed: int) -> None:
        self.encoder = Encoder(distributions)
        self.genes = Genes.of(self.encoder)
        self.scan = sobol(len(self.encoder.names), seed)  # the startup trials' shared sequence
        self.scan_tried = 0
        self.scan_rows: list[np.ndarray] = []
        self.guess: FeasibilityGuess | None = None  # of a lazily checked constraint, once probed
        self.memo = Memo(self.encoder)
        self.study: tuple[int, int] | None = None
        self.model: Any = None
        self.fitted_on: tuple[Any, ...] | None = None

    def scan_point(self, number: int, checker: Checker, max_tries: int) -> Params | None:
        """Trial ``number``'s point of the shared feasible Sobol prefix (scanned on demand,
        within ``max_tries`` draws); None where the prefix is that short."""
        while len(self.scan_rows) <= number and self.scan_tried < max_tries:
            size = chunk_size(self.scan_tried, max_tries - self.scan_tried, FIRST_CHUNK)
            X = checker.draw(self.scan, size)
            self.scan_tried += len(X)
            self.scan_rows += list(X[checker(X)])
        if number < len(self.scan_rows):
            return self.encoder.decode(self.scan_rows[number][None, :])[0]
        return None

    def forget_other_studies(self, study: Study) -> None:
        """Trial ids and numbers are per study: a sampler reused on another study starts its
        memo and model cache afresh."""
        key = (id(study._storage), study._study_id)
        if key != self.study:
            self.study, self.memo, self.fitted_on = key, Memo(self.encoder), None
