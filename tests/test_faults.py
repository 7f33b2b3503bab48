"""Faults that are not kills: Ctrl-C during a trial, a worker whose trainings diverge, a worker
pointed at the wrong study. Each leaves the storage intact and says what happened in one line."""

from __future__ import annotations

import signal
import subprocess
import sys

import optuna
from helpers import (
    COMPLETE,
    FAIL,
    RUNNING,
    load_trials,
    run_cli,
    start_run,
    trained,
    wait_for,
)

from jointnas.storage.budget import counts_toward_budget

NAN_WORKER = """
import sys
import torch
import jointnas.training.data as data
from jointnas.training.data import Dataset

real = data.load_dataset  # runs.context loads the data through it

def nan_data(*args, **kwargs):  # every training of this worker hits a NaN loss
    d = real(*args, **kwargs)
    return Dataset(name=d.name, x_train=torch.full(d.x_train.shape, float("nan")),
                   y_train=d.y_train, x_val=d.x_val, y_val=d.y_val, num_classes=d.num_classes)

data.load_dataset = nan_data
from jointnas.cli import main
sys.exit(main(["worker", "--storage", sys.argv[1], "--study", sys.argv[2], "--no-progress",
               "--threads", "1"]))
"""


def test_ctrl_c_during_a_trial_exits_130_in_one_line_and_the_rerun_completes(tmp_path):
    storage, study = str(tmp_path / "run.log"), "ctrl-c"
    args = ["--trials", "3", "--epochs", "3", "--stop-after", "coarse"]
    proc = start_run(tmp_path, storage, study, *args)

    def training(trials):  # candidate drawn and stored: the trial is in training
        return any(t.state == RUNNING and "stage" in t.user_attrs for t in trials)

    wait_for(storage, study, proc, training)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    lines = [x for x in (tmp_path / f"{study}.out").read_text().splitlines() if x.strip()]
    assert lines == ["jointnas: interrupted; completed trials are kept in the storage"]
    interrupted = [t for t in load_trials(storage, study) if t.state == FAIL]
    assert len(interrupted) == 1 and not counts_toward_budget(interrupted[0])

    rerun = start_run(tmp_path, storage, study, *args)
    assert rerun.wait(timeout=300) == 0
    assert len(trained(load_trials(storage, study))) == 3


def test_a_worker_whose_trainings_diverge_fails_only_its_own_trials(tmp_path):
    storage, study, budget = str(tmp_path / "run.log"), "nan", 8
    args = ["--trials", str(budget), "--epochs", "1", "--workers", "2", "--stop-after", "coarse"]
    parent = start_run(tmp_path, storage, study, *args)
    wait_for(storage, study, parent, lambda ts: len(ts) > 0)
    nan_worker = subprocess.run(
        [sys.executable, "-c", NAN_WORKER, storage, study],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert nan_worker.returncode == 0, nan_worker.stderr
    assert parent.wait(timeout=300) == 0, (tmp_path / f"{study}.out").read_text()
    trials = load_trials(storage, study)
    diverged = [t for t in trials if t.state == FAIL and "fail_reason" in t.user_attrs]
    assert diverged and all(t.user_attrs["fail_reason"].startswith("diverged") for t in diverged)
    assert all("non-finite loss" in t.user_attrs["fail_reason"] for t in diverged)
    assert trained(trials)  # the healthy workers went on training
    assert sum(counts_toward_budget(t) for t in trials) >= budget
    assert all(t.state in (COMPLETE, FAIL) for t in trials)


def test_worker_on_a_study_not_made_by_run_is_one_line(tmp_path):
    url = f"sqlite:///{tmp_path}/plain.db"
    optuna.create_study(study_name="plain", storage=url).enqueue_trial({"x": 1})
    for study, message in (("plain", "was not made by `jointnas run`"), ("nope", "no study")):
        done = run_cli("worker", "--storage", url, "--study", study, cwd=tmp_path)
        lines = [x for x in done.stderr.splitlines() if x.strip()]
        assert done.returncode == 2 and len(lines) == 1 and message in lines[0], done.stderr
    assert len(optuna.load_study(study_name="plain", storage=url).trials) == 1


def test_an_error_raised_while_ctrl_c_unwinds_a_storage_write_is_still_an_interrupt(
    monkeypatch, capsys
):
    """Ctrl-C inside the journal file lock surfaces as the lock's FileNotFoundError."""
    import jointnas.cli as cli

    def interrupted_write(args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise FileNotFoundError("run.log.lock...rename") from None

    monkeypatch.setitem(cli.COMMANDS, "run", interrupted_write)
    assert cli.main(["run"]) == 130
    assert capsys.readouterr().err.strip().splitlines() == [
        "jointnas: interrupted; completed trials are kept in the storage"
    ]
