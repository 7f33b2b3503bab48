"""Heartbeats for Optuna's journal file storage, which (in Optuna 5) has none of its own.

Optuna's heartbeat machinery is storage-agnostic: ``study.optimize`` starts a thread that calls
``storage.record_heartbeat`` while a trial runs, and before each new trial it fails the trials
whose heartbeat went quiet (``fail_stale_trials``) and hands them to the storage's stale-trial
callback (here Optuna's ``RetryHeartbeatStaleTrialCallback``: the same params are enqueued again).
Only the RDB storage implements the storage side. This module implements it for the journal
file by keeping each beat as a trial system attribute, so a worker killed with SIGKILL on a
journal study has its candidate retrained by a surviving worker or by the next run, exactly as on
PostgreSQL.

Beats are wall-clock times (``time.time()``): every process sharing the journal file must see
the same clock, which holds on one machine and on a network file system with NTP.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import optuna
from optuna.storages import JournalStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial, TrialState

from jointnas.storage import keys

BEAT_ATTR = keys.HEARTBEAT


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """A journal storage whose running trials beat every ``heartbeat_interval`` seconds.

    A RUNNING trial is stale when its last beat (or, before the first beat, its start) is older
    than ``grace_period`` seconds (default: 3 beats). Every process on the study must open it
    through this class (e.g. any ``jointnas`` command): a plain ``JournalStorage`` process does not
    beat, and its long trials would be failed as stale.
    """

    def __init__(
        self,
        backend: optuna.storages.journal.BaseJournalBackend,
        *,
        heartbeat_interval: int,
        grace_period: int | None = None,
        stale_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    ) -> None:
        if heartbeat_interval < 1:
            raise ValueError(f"heartbeat_interval must be >= 1 s, got {heartbeat_interval}")
        super().__init__(backend)
        self._interval = heartbeat_interval
        self._grace = 3 * heartbeat_interval if grace_period is None else grace_period
        if self._grace <= heartbeat_interval:
            raise ValueError("grace_period must be longer than heartbeat_interval")
        self._callback = stale_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        # finished meanwhile (or failed as stale by another process): nothing to keep alive
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            self.set_trial_system_attr(trial_id, BEAT_ATTR, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            last = t.system_attrs.get(BEAT_ATTR)
            if last is None and t.datetime_start is not None:  # killed before its first beat
                last = t.datetime_start.timestamp()
            if last is not None and now - last > self._grace:
                stale.append(t._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int:
        return self._interval

    def get_heartbeat_stale_trial_callback(
        self,
    ) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self._callback
