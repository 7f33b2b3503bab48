"""Many workers and faults, with real processes: SIGKILL a worker mid-training on PostgreSQL
and on a journal file (with heartbeats, and without: the parent notices its dead child at once);
SIGKILL ``jointnas run`` in its coarse and fine stages and rerun."""

from __future__ import annotations

import collections
import os
import signal
import time

import optuna
import pytest
from helpers import (
    COMPLETE,
    FAIL,
    RUNNING,
    WAITING,
    load_trials,
    start_run,
    trained,
    wait_for,
)

from jointnas.storage.budget import counts_toward_budget
from jointnas.storage.keys import params_key


def _in_training(t: optuna.trial.FrozenTrial) -> bool:
    """RUNNING with its candidate drawn in full (``stage`` is set after the last suggest; the
    ``worker`` attr comes first, before any)."""
    return t.state == RUNNING and "stage" in t.user_attrs and "worker" in t.user_attrs


def _no_duplicates(trials) -> None:
    keys = [params_key(t.params) for t in trained(trials)]
    twins = [k for k, n in collections.Counter(keys).items() if n > 1]
    assert not twins, f"candidates trained twice: {twins}"


@pytest.fixture(params=["journal", "postgresql"])
def storage_url(request, tmp_path) -> str:
    if request.param == "journal":
        return str(tmp_path / "study.log")
    return request.getfixturevalue("postgres_url")


def test_a_sigkilled_worker_loses_nothing_and_its_candidate_is_retrained(tmp_path, storage_url):
    """3 workers (``run --workers 3``); one is SIGKILLed while training. The survivors fail its
    stale trial, retrain that candidate, and fill the budget; nothing completed is lost and no
    candidate is trained twice. (Trials a survivor started before the budget was reached also
    finish, so the study may hold up to workers - 1 more than the budget.)"""
    study, budget = f"w{time.time_ns()}", 12
    args = ["--workers", "3", "--trials", str(budget), "--epochs", "2", "--stop-after", "coarse"]
    proc = start_run(tmp_path, storage_url, study, *args)

    def training(trials):
        done = [t for t in trials if t.state == COMPLETE]
        running = [t for t in trials if _in_training(t)]
        return running[0] if done and running else None

    victim, before = wait_for(storage_url, study, proc, training)
    pid = int(victim.user_attrs["worker"].rsplit(":", 1)[1])
    assert pid != proc.pid  # the parent only supervises
    os.kill(pid, signal.SIGKILL)
    completed_before = {t.number: t.value for t in before if t.state == COMPLETE}
    assert proc.wait(timeout=300) == 0, (tmp_path / f"{study}.out").read_text()

    after = {t.number: t for t in load_trials(storage_url, study)}
    # reached; trials already running when the last one completed also finish (at most 2 more)
    assert budget <= sum(counts_toward_budget(t) for t in after.values()) <= budget + 2
    assert budget <= len(trained(after.values())) <= budget + 2
    for number, value in completed_before.items():  # every completed trial is still there
        assert after[number].state == COMPLETE and after[number].value == value
    killed = after[victim.number]
    assert killed.state == FAIL  # by the parent (its child died) or a survivor's heartbeat check
    retries = [t for t in after.values() if t.system_attrs.get("failed_trial") == killed.number]
    assert retries and retries[0].params == killed.params and retries[0].state == COMPLETE
    _no_duplicates(after.values())
    workers = {t.user_attrs["worker"] for t in trained(after.values())}
    assert len(workers) >= 2


def test_a_dead_worker_is_noticed_at_once_and_the_run_leaves_no_trial_running(
    tmp_path, storage_url
):
    """3 workers; one is SIGKILLed while training, with heartbeats too slow to matter (600 s:
    a 30 min grace). The parent sees its child die, fails that trial at once and re-enqueues the
    candidate, which a survivor retrains; the run ends with the budget reached and no trial left
    RUNNING or WAITING."""
    study, budget = f"d{time.time_ns()}", 6
    args = ["--workers", "3", "--trials", str(budget), "--epochs", "2", "--stop-after", "coarse"]
    proc = start_run(tmp_path, storage_url, study, *args, "--heartbeat", "600")

    def training(trials):
        running = [t for t in trials if _in_training(t)]
        return running[0] if running else None

    victim, _ = wait_for(storage_url, study, proc, training)
    os.kill(int(victim.user_attrs["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
    assert proc.wait(timeout=300) == 0, (tmp_path / f"{study}.out").read_text()

    after = {t.number: t for t in load_trials(storage_url, study)}
    assert not [t.number for t in after.values() if t.state in (RUNNING, WAITING)]
    assert budget <= sum(counts_toward_budget(t) for t in after.values()) <= budget + 2
    killed = after[victim.number]
    assert killed.state == FAIL and not counts_toward_budget(killed)
    assert "was killed by SIGKILL" in killed.user_attrs["worker_died"]  # by the parent
    retries = [t for t in after.values() if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retries) == 1 and retries[0].params == killed.params
    # Not after the grace period, without a clock: the 600 s heartbeat's grace (1,800 s) is past
    # the 300 s the run was given, so only the parent can have failed it, and its retry ran
    # after that failure, within the same run.
    assert killed.datetime_complete <= retries[0].datetime_start
    assert retries[0].state == COMPLETE and "train_seconds" in retries[0].user_attrs
    _no_duplicates(after.values())


def test_killing_run_in_the_coarse_stage_then_rerunning_repeats_no_training(tmp_path):
    storage, study, budget = str(tmp_path / "run.log"), "coarse-kill", 6
    args = ["--trials", str(budget), "--epochs", "2", "--fine-generations", "3"]
    args += ["--final-top", "1", "--final-epochs", "1", "--out", "out"]
    proc = start_run(tmp_path, storage, study, *args)

    def mid_training(trials):
        return (
            any(_in_training(t) for t in trials) and sum(t.state == COMPLETE for t in trials) >= 2
        )

    wait_for(storage, study, proc, mid_training)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {t.number: t.value for t in load_trials(storage, study) if t.state == COMPLETE}
    time.sleep(3.5)  # past the grace period (3 missed beats): the rerun fails and retries it

    rerun = start_run(tmp_path, storage, study, *args)
    assert rerun.wait(timeout=300) == 0, (tmp_path / f"{study}.out").read_text()
    after = {t.number: t for t in load_trials(storage, study)}
    for number, value in done_before.items():
        assert after[number].state == COMPLETE and after[number].value == value
    assert len(trained(after.values())) == budget  # the budget, not budget + redone ones
    _no_duplicates(after.values())
    finals = load_trials(storage, f"{study}.final")  # one stage, one study
    assert trained(finals, "final") and (tmp_path / "out" / "best.json").is_file()


def test_killing_run_in_the_fine_stage_then_rerunning_repeats_no_training(tmp_path):
    storage, study, budget = str(tmp_path / "run.log"), "fine-kill", 6
    base = ["--trials", str(budget), "--epochs", "1", "--final-top", "1", "--final-epochs", "1"]
    base += ["--out", "out"]
    proc = start_run(tmp_path, storage, study, *base, "--fine-generations", "100000")

    def fine_started(trials):
        return any(t.user_attrs.get("stage") == "fine" for t in trials)

    wait_for(storage, f"{study}.fine", proc, fine_started)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    coarse_before = {t.number: t.value for t in trained(load_trials(storage, study))}
    assert len(coarse_before) == budget

    rerun = start_run(tmp_path, storage, study, *base, "--fine-generations", "3")
    assert rerun.wait(timeout=300) == 0, (tmp_path / f"{study}.out").read_text()
    after = load_trials(storage, study)
    assert {t.number: t.value for t in trained(after)} == coarse_before  # none retrained
    finals = load_trials(storage, f"{study}.final")
    assert len(trained(finals, "final")) == 1 and (tmp_path / "out" / "best.json").is_file()


def test_killing_run_in_a_final_training_resumes_it_from_its_checkpoint(tmp_path):
    storage, study = str(tmp_path / "run.log"), "final-kill"
    args = ["--trials", "5", "--epochs", "1", "--fine-generations", "2", "--final-top", "1"]
    args += ["--final-epochs", "4", "--out", "out"]
    proc = start_run(tmp_path, storage, study, *args)
    checkpoints = tmp_path / "out" / "checkpoints"
    deadline = time.monotonic() + 240
    while not any(checkpoints.glob("*.pt")) and time.monotonic() < deadline:
        assert proc.poll() is None, (tmp_path / f"{study}.out").read_text()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # after >= 1 epoch of the final training
    proc.wait()
    coarse_before = {t.number: t.value for t in trained(load_trials(storage, study))}
    time.sleep(3.5)  # past the grace period

    rerun = start_run(tmp_path, storage, study, *args)
    assert rerun.wait(timeout=300) == 0, (tmp_path / f"{study}.out").read_text()
    after = load_trials(storage, study)
    assert {t.number: t.value for t in trained(after)} == coarse_before
    (final,) = trained(load_trials(storage, f"{study}.final"), "final")
    log = (tmp_path / f"{study}.out").read_text()
    assert final.user_attrs.get("resumed_epochs", 0) >= 1, log  # not retrained from epoch 0
    assert len(final.user_attrs["val_acc_curve"]) == 4 and sorted(final.intermediate_values) == [
        0,
        1,
        2,
        3,
    ]
    assert not any(checkpoints.glob("*.pt"))  # removed once the weights were saved
    assert not [t for t in after if t.state == optuna.trial.TrialState.WAITING]
