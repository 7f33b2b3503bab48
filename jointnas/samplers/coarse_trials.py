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
from optuna.trial import FrozenTrial, TrialState

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


def record(encoder: Encoder, trial: FrozenTrial) -> Params | None:
    """What ``trial`` holds in this space: its params; for an unfinished trial also its
    fixed params and its recorded proposal (what it will ask for). None if out of space."""
    record: Params = {}
    if trial.state != TrialState.COMPLETE:
        record.update(trial.system_attrs.get("fixed_params", {}))
        record.update(trial.system_attrs.get(PROPOSAL_ATTR, {}))
    record.update(trial.params)
    record = {n: v for n, v in record.items() if n in encoder.distributions}
    valid = valid_subset(encoder, record)
    return valid if len(valid) == len(record) else None


def held_candidates(encoder: Encoder, trials: Sequence[FrozenTrial], *, exclude: int) -> Taken:
    held = Taken()
    for t in trials:
        if t._trial_id == exclude or t.state not in (
            TrialState.RUNNING,
            TrialState.WAITING,
            TrialState.COMPLETE,
        ):
            continue
        rec = record(encoder, t)
        if rec:
            held.add(rec)
    return held


def training_set(
    encoder: Encoder, trials: Sequence[FrozenTrial]
) -> list[tuple[int, Params, float]]:
    """Usable completed trials, ``(number, params, value)``, in completion order.

    A parameter the objective never asked for (conditional spaces) is filled in from the
    trial's recorded proposal: it did not affect the value. Trials outside the space, with
    a non-finite value or without a complete candidate are left out.
    """
    rows: list[tuple[datetime, int, Params, float]] = []
    for t in trials:
        if t.state != TrialState.COMPLETE or t.values is None or len(t.values) != 1:
            continue
        value = float(t.values[0])
        if not math.isfinite(value):
            continue
        merged = {**t.system_attrs.get(PROPOSAL_ATTR, {}), **t.params}
        try:
            params = encoder.validate(
                {n: v for n, v in merged.items() if n in encoder.distributions}
            )
        except ValueError:
            continue
        rows.append((t.datetime_complete or datetime.min, t.number, params, value))
    rows.sort(key=lambda r: (r[0], r[1]))
    return [(number, params, value) for _, number, params, value in rows]


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


def first_free(enc: Encoder, ranked: np.ndarray, taken: Taken) -> Params:
    """The first of ``ranked`` (encoded rows, best first) that no other trial holds; the first
    one where a small discrete space is used up (repeating beats stopping the study)."""
    for start in range(0, len(ranked), 64):
        for params in enc.decode(ranked[start : start + 64]):
            if params not in taken:
                return params
    _LOG.warning(
        f"all {len(ranked)} candidates looked at are held by running, waiting or completed "
        "trials; proposing one again"
    )
    return enc.decode(ranked[:1])[0]
