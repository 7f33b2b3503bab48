"""What a supervisor does when a worker dies: fail its RUNNING trials at once, retry them.

Heartbeats (``storage.heartbeat``, Optuna's RDB heartbeat) fail a killed worker's trial only
after a grace period, and only when some process is still sampling on the study. A supervisor
that saw the worker die (``workers.launch`` sees its child exit; a remote supervisor could see
a host go down) need not wait: ``fail_worker_trials`` fails what the worker left RUNNING and
enqueues the candidates again while the coarse budget needs them.

A failed trial gets no ``fail_reason`` (see ``budget.counts_toward_budget``): it was not
trained, so it does not use up the budget. The retry is a WAITING copy of the trial, marked as
Optuna's ``RetryHeartbeatStaleTrialCallback`` marks its retries (system attrs ``failed_trial``:
the first trial of the candidate, ``retry_history``: all the failed ones), so a trial retried by
a heartbeat and one retried here look alike.
"""

from __future__ import annotations

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from jointnas.storage import keys
from jointnas.storage.budget import coarse_done

#: user attr of a trial failed because its worker died: what happened to the worker
DIED_ATTR = keys.WORKER_DIED
#: user attr of a WAITING retry failed because the budget was reached before it ran
UNNEEDED_ATTR = keys.NOT_RETRIED
#: retries per candidate, as the heartbeat's (``storage._retry``); then it is given up
MAX_RETRY = 3
#: attrs of a trial that describe its run, not its candidate: not copied to the retry
_RUN_USER_ATTRS = (keys.WORKER, DIED_ATTR)
_RUN_SYSTEM_ATTRS = (keys.HEARTBEAT,)  # the retry starts afresh


def fail_worker_trials(
    study: optuna.Study, worker: str, *, reason: str, budget: int | None = None
) -> list[int]:
    """Fail the RUNNING trials of a dead worker and retry their candidates; return the
    numbers of the trials failed.

    ``worker`` is the trials' ``worker`` user attr (``"host:pid"``, set by the objective); call
    this only once that process is known to be gone, since a live worker's trial would be
    failed under it. Each trial gets ``reason`` as user attr ``worker_died`` and state FAIL. A
    trial that finished meanwhile (completed, or failed by another process's heartbeat check,
    which then retries it itself) is left alone.

    A failed candidate is enqueued again (a WAITING copy, ``failed_trial``/``retry_history``
    as Optuna's heartbeat retry) when the study holds fewer than ``budget`` budget-counting
    coarse trials (``budget=None``: always) and the trial was drawn in full (it has its
    ``stage`` attr; one killed while its params were being suggested is only failed, and a
    fresh candidate takes its place). A candidate whose trainings killed their worker
    ``MAX_RETRY + 1`` times (e.g. out of memory) is given up with a ``fail_reason``, so it uses
    up the budget like a diverged one instead of killing workers forever.
    """
    storage = study._storage  # the Study API has no state setter for another process's trial
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get(keys.WORKER) != worker:
            continue
        history = [*t.system_attrs.get("retry_history", []), t.number]
        retry = keys.STAGE in t.user_attrs and (budget is None or coarse_done(study) < budget)
        try:
            storage.set_trial_user_attr(t._trial_id, DIED_ATTR, reason)
            if retry and len(history) > MAX_RETRY:
                retry = False
                storage.set_trial_user_attr(
                    t._trial_id,
                    keys.FAIL_REASON,
                    f"killed its worker {len(history)} times ({reason}); not retried",
                )
            if not storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:
            continue  # finished meanwhile: nothing of the dead worker's is left running
        failed.append(t.number)
        if retry:
            _enqueue_retry(study, t, history)
    return failed


def _enqueue_retry(study: optuna.Study, trial: FrozenTrial, history: list[int]) -> None:
    user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in _RUN_USER_ATTRS}
    system_attrs = {k: v for k, v in trial.system_attrs.items() if k not in _RUN_SYSTEM_ATTRS} | {
        "failed_trial": trial.system_attrs.get("failed_trial", trial.number)
    }
    system_attrs["retry_history"] = history
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=user_attrs,
            system_attrs=system_attrs,
        )
    )


def drop_unneeded_retries(study: optuna.Study, budget: int) -> list[int]:
    """Fail the WAITING retries of coarse trials (heartbeat's or ``fail_worker_trials``') once
    the study holds ``budget`` budget-counting coarse trials; return their numbers.

    Workers stop at the budget, so a retry enqueued just before it was reached is never run by
    the coarse stage, and a later ``study.optimize`` (the final stage's) would pop it as its
    next trial, training a coarse candidate in place of its own. Call this only when no coarse
    ``optimize`` runs on the study any more (after the budget was reached, none starts). Each
    gets user attr ``not_retried`` and no ``fail_reason``: it does not use up the budget.
    """
    if coarse_done(study) < budget:
        return []
    storage, dropped = study._storage, []
    for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        if (
            "failed_trial" not in t.system_attrs
            or t.user_attrs.get(keys.STAGE, keys.COARSE) != keys.COARSE
        ):
            continue
        try:
            storage.set_trial_user_attr(
                t._trial_id, UNNEEDED_ATTR, f"budget of {budget} reached first"
            )
            if storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                dropped.append(t.number)
        except UpdateFinishedTrialError:
            continue
    return dropped
