"""A dead worker's trials, in one process: ``supervise.fail_worker_trials`` fails exactly that
worker's RUNNING trials and retries their candidates while the budget needs them;
``drop_unneeded_retries`` fails the retries left once the budget is reached."""

from __future__ import annotations

import time

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState, create_trial

from jointnas.storage.backends import open_storage
from jointnas.storage.budget import counts_toward_budget
from jointnas.storage.heartbeat import BEAT_ATTR
from jointnas.storage.supervise import MAX_RETRY, drop_unneeded_retries, fail_worker_trials

DEAD, ALIVE = "host:111", "host:222"


@pytest.fixture(params=["journal", "postgresql"])
def study(request, tmp_path) -> optuna.Study:
    if request.param == "journal":
        storage = JournalStorage(JournalFileBackend(str(tmp_path / "study.log")))
    else:  # the RDB storage as the CLI opens it (cached)
        storage = open_storage(request.getfixturevalue("postgres_url"))
    name = f"s{time.time_ns()}"
    return optuna.create_study(storage=storage, study_name=name, direction="maximize")


def _running(study: optuna.Study, worker: str, x: float, *, drawn: bool = True, **system) -> int:
    """A RUNNING trial of ``worker`` as the objective leaves it mid-training (``drawn``) or
    mid-suggest; returns its number."""
    study.enqueue_trial({"x": x})
    trial = study.ask()
    trial.set_user_attr("worker", worker)
    trial.suggest_float("x", 0, 1)
    for key, value in system.items():
        study._storage.set_trial_system_attr(trial._trial_id, key, value)
    if drawn:
        trial.set_user_attr("stage", "coarse")
        trial.set_user_attr("mflops", 0.1)
    return trial.number


def _completed(study: optuna.Study, n: int) -> None:
    for i in range(n):
        study.add_trial(
            create_trial(
                value=0.5,
                params={"x": i / 100},
                distributions={"x": FloatDistribution(0, 1)},
                user_attrs={"stage": "coarse"},
            )
        )


def _by_number(study: optuna.Study) -> dict[int, optuna.trial.FrozenTrial]:
    return {t.number: t for t in study.get_trials()}


def test_only_the_dead_workers_running_trials_fail_and_their_candidates_are_retried(study):
    _completed(study, 1)
    mine = _running(study, DEAD, 0.25, **{BEAT_ATTR: 1.0})
    theirs = _running(study, ALIVE, 0.75)
    assert fail_worker_trials(study, DEAD, reason="killed by SIGKILL", budget=5) == [mine]

    trials = _by_number(study)
    failed = trials[mine]
    assert (
        failed.state == TrialState.FAIL and failed.user_attrs["worker_died"] == "killed by SIGKILL"
    )
    assert not counts_toward_budget(failed)  # not trained: no fail_reason, no budget used
    assert trials[theirs].state == TrialState.RUNNING
    (retry,) = [t for t in trials.values() if t.state == TrialState.WAITING]
    assert retry.params == {"x": 0.25}
    assert retry.system_attrs["failed_trial"] == mine and retry.system_attrs["retry_history"] == [
        mine
    ]
    assert retry.user_attrs == {"stage": "coarse", "mflops": 0.1}  # no worker, no death
    assert BEAT_ATTR not in retry.system_attrs  # the retry's heartbeat starts afresh
    assert fail_worker_trials(study, DEAD, reason="again", budget=5) == []  # nothing left


def test_a_retry_that_dies_again_keeps_the_first_trial_and_the_history(study):
    first = _running(study, DEAD, 0.5)
    fail_worker_trials(study, DEAD, reason="killed", budget=None)
    study.ask()  # pops the retry; its worker dies too
    (again,) = study.get_trials(states=(TrialState.RUNNING,))
    study._storage.set_trial_user_attr(again._trial_id, "worker", ALIVE)
    assert fail_worker_trials(study, ALIVE, reason="killed", budget=None) == [again.number]
    (retry,) = study.get_trials(states=(TrialState.WAITING,))
    assert retry.system_attrs["failed_trial"] == first
    assert retry.system_attrs["retry_history"] == [first, again.number]


def test_no_retry_once_the_budget_is_reached(study):
    _completed(study, 3)
    number = _running(study, DEAD, 0.5)
    assert fail_worker_trials(study, DEAD, reason="killed", budget=3) == [number]
    assert _by_number(study)[number].state == TrialState.FAIL
    assert not study.get_trials(states=(TrialState.WAITING,))


def test_a_candidate_killed_while_being_drawn_is_failed_not_retried(study):
    number = _running(study, DEAD, 0.5, drawn=False)  # params partly suggested, no stage yet
    assert fail_worker_trials(study, DEAD, reason="killed", budget=None) == [number]
    assert not study.get_trials(states=(TrialState.WAITING,))


def test_a_candidate_that_keeps_killing_its_worker_is_given_up_and_uses_budget(study):
    number = _running(study, DEAD, 0.5, retry_history=list(range(MAX_RETRY)), failed_trial=0)
    fail_worker_trials(study, DEAD, reason="killed by SIGKILL", budget=10)
    given_up = _by_number(study)[number]
    assert given_up.state == TrialState.FAIL and counts_toward_budget(given_up)
    assert given_up.user_attrs["fail_reason"].startswith(f"killed its worker {MAX_RETRY + 1} times")
    assert not study.get_trials(states=(TrialState.WAITING,))


def test_a_trial_that_finished_meanwhile_is_left_alone(study, monkeypatch):
    number = _running(study, DEAD, 0.5)
    storage = study._storage
    real = storage.set_trial_state_values

    def finish_first(trial_id, state, values=None):  # the trial completes just before the FAIL
        real(trial_id, TrialState.COMPLETE, [0.9])
        return real(trial_id, state, values)

    monkeypatch.setattr(storage, "set_trial_state_values", finish_first)
    assert fail_worker_trials(study, DEAD, reason="killed", budget=None) == []
    monkeypatch.undo()
    assert _by_number(study)[number].state == TrialState.COMPLETE
    assert _by_number(study)[number].value == 0.9
    assert not study.get_trials(states=(TrialState.WAITING,))


def test_retries_the_budget_no_longer_needs_are_dropped(study):
    _running(study, DEAD, 0.5)
    fail_worker_trials(study, DEAD, reason="killed", budget=2)
    study.enqueue_trial({"x": 0.9})  # enqueued by hand, not a retry: kept
    assert drop_unneeded_retries(study, 2) == []  # budget not reached: the retry is needed
    _completed(study, 2)
    (retry,) = [t for t in study.get_trials() if "failed_trial" in t.system_attrs]
    assert drop_unneeded_retries(study, 2) == [retry.number]
    dropped = _by_number(study)[retry.number]
    assert dropped.state == TrialState.FAIL and not counts_toward_budget(dropped)
    assert "budget of 2 reached" in dropped.user_attrs["not_retried"]
    (kept,) = study.get_trials(states=(TrialState.WAITING,))
    assert kept.system_attrs["fixed_params"] == {"x": 0.9}
