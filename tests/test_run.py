"""``jointnas run`` end to end: real trainings recorded in an Optuna study, resume, bad input."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import time
from wsgiref.util import setup_testing_defaults

import optuna
import pytest
import torch
from helpers import run_cli

from jointnas.constraints import Limits
from jointnas.errors import ConfigError, InfeasibleConstraintError
from jointnas.evaluators import TrainFromScratch
from jointnas.runs.objective import Objective
from jointnas.runs.pipeline import RunConfig, run
from jointnas.samplers import FeasibleSampler
from jointnas.spaces.fbnetv3 import FBNetV3Space
from jointnas.storage.backends import load_study
from jointnas.training.trainer import TrainingDiverged


def _config(tmp_path, **kw) -> RunConfig:
    base = dict(
        storage=f"sqlite:///{tmp_path}/s.db",
        dataset="digits",
        trials=2,
        epochs=1,
        max_mflops=1.0,
        stop_after="coarse",
    )
    return RunConfig(**{**base, **kw})


def test_run_records_feasible_trained_trials_and_resumes(tmp_path, digits):
    study = run(_config(tmp_path), data=digits, progress=False)
    trials = study.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    for t in trials:
        assert 0.0 <= t.value <= 1.0
        assert 0 < t.user_attrs["mflops"] <= 1.0
        assert t.user_attrs["params"] > 0 and t.user_attrs["acts"] > 0
        assert t.user_attrs["val_acc_curve"] == [t.value]
        assert t.intermediate_values == {0: t.value}
        assert t.system_attrs["constraints:mflops"] <= 0
        assert t.system_attrs["constraints"] == [t.system_attrs["constraints:mflops"]]
    assert study.user_attrs["jointnas:space"] == "fbnetv3-small"

    before = [(t.number, t.params, t.value) for t in trials]
    again = run(_config(tmp_path, trials=3), data=digits, progress=False)
    after = again.get_trials()
    assert len(after) == 3
    assert [(t.number, t.params, t.value) for t in after[:2]] == before

    with pytest.raises(ConfigError, match="epochs=1"):
        run(_config(tmp_path, epochs=2), data=digits, progress=False)
    assert (
        len(optuna.load_study(study_name="jointnas", storage=_config(tmp_path).storage).trials) == 3
    )


def test_interrupted_trial_is_retried_not_counted(tmp_path, digits):
    config = _config(tmp_path, trials=1)
    study = optuna.create_study(
        study_name=config.study_name, storage=config.storage, direction="maximize"
    )
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)  # as after Ctrl-C or a crash
    study = run(config, data=digits, progress=False)
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE]


def _journal_worker(path: str, trials: int) -> None:
    from jointnas.training.data import load_dataset

    torch.set_num_threads(1)
    data = load_dataset("digits", seed=0).subset(train=64, val=32)
    config = RunConfig(storage=path, trials=trials, epochs=1, max_mflops=0.5, stop_after="coarse")
    run(config, data=data, progress=False)


def test_workers_share_a_journal_study_and_its_budget(tmp_path):
    """Two processes on one journal file: distinct candidates, and the budget is the study's."""
    path = str(tmp_path / "study.journal")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_journal_worker, args=(path, 4)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    study = load_study(path, "jointnas")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert 4 <= len(done) <= 5  # each worker stops once the study holds 4; one may be mid-trial
    assert len({json.dumps(t.params, sort_keys=True) for t in done}) == len(done)


def test_impossible_limit_names_the_smallest_reachable_cost(tmp_path, digits):
    with pytest.raises(InfeasibleConstraintError, match=r"needs 0\.112 mflops"):
        run(_config(tmp_path, max_mflops=0.05), data=digits, progress=False)


def test_too_tight_limit_is_refused_before_any_trial_exists(tmp_path, digits):
    with pytest.raises(InfeasibleConstraintError, match="too tight to search"):
        run(_config(tmp_path, max_mflops=0.1125), data=digits, progress=False)
    summaries = optuna.get_all_study_summaries(_config(tmp_path).storage)
    assert summaries == []


def test_diverging_trials_fail_with_reason_and_the_study_goes_on(nan_digits):
    broken = nan_digits
    space = FBNetV3Space()
    objective = Objective(
        space=space,
        evaluator=TrainFromScratch(data=broken, epochs=1),
        limits=Limits(mflops=1.0),
    )
    study = optuna.create_study(
        direction="maximize",
        sampler=FeasibleSampler(
            search_space=space.distributions, constraint=objective.constraint, seed=0
        ),
    )
    study.optimize(objective, n_trials=2, catch=(TrainingDiverged,))
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL] * 2
    assert all(
        t.user_attrs["fail_reason"].startswith("diverged: non-finite loss") for t in study.trials
    )


def test_config_validation():
    with pytest.raises(ConfigError, match="--trials must be >= 1"):
        RunConfig(trials=0)
    with pytest.raises(ConfigError, match="--max-mflops must be > 0"):
        RunConfig(max_mflops=-1.0)
    with pytest.raises(ConfigError, match="unknown space 'huge'"):
        RunConfig(space="huge")
    with pytest.raises(ConfigError, match="--max-acts must be > 0"):
        RunConfig(max_acts=0)
    with pytest.raises(ConfigError, match="coarse_sampler must be coarse or random"):
        RunConfig(coarse_sampler="tpe")


def test_cli_run_end_to_end_and_dashboard_lists_the_study(tmp_path):
    url = f"sqlite:///{tmp_path}/cli.db"
    done = run_cli(
        "run",
        "--storage",
        url,
        "--study",
        "e2e",
        "--dataset",
        "digits",
        "--trials",
        "2",
        "--epochs",
        "1",
        "--no-progress",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "'COMPLETE': 2" in done.stdout and "val_acc" in done.stdout

    import optuna_dashboard

    app = optuna_dashboard.wsgi(url)

    def get(path: str) -> dict:
        environ: dict = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
        setup_testing_defaults(environ)
        status: list[str] = []
        body = b"".join(app(environ, lambda s, h, exc=None: status.append(s)))
        assert status[0].startswith("200"), body[:300]
        return json.loads(body)

    summaries = get("/api/studies")["study_summaries"]
    assert [s["study_name"] for s in summaries] == ["e2e"]
    detail = get(f"/api/studies/{summaries[0]['study_id']}")
    assert len(detail["trials"]) == 2
    for trial in detail["trials"]:
        assert trial["state"] == "Complete" and len(trial["constraints"]) == 1
        assert {a["key"] for a in trial["user_attrs"]} >= {"mflops", "params", "acts"}
        assert len(trial["intermediate_values"]) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-mflops", "0.01"], "smallest candidate"),
        (["--dataset", "no/such/dir"], "does not exist"),
        (["--storage", "notaurl"], "neither a URL nor a journal file"),
        (["--storage", "nosuchdb://x"], "cannot open storage"),
        (["--storage", "postgresql+psycopg://u@127.0.0.1:1/db"], "cannot open storage"),
        (["--workers", "2"], "SQLite locks the whole database"),
        (["--workers", "0"], "must be >= 1"),
        (["--heartbeat", "-3"], "must be >= 1"),
        (["--trials", "0"], "must be >= 1"),
        (["--max-mflops", "abc"], "expected a number"),
        (["--space", "nosuchspace"], "unknown space 'nosuchspace'"),
        (["--preset", "small"], "--preset was replaced by --space"),
    ],
)
def test_cli_bad_input_is_one_line_and_nonzero(tmp_path, args, message):
    url = f"sqlite:///{tmp_path}/keep.db"
    kept = optuna.create_study(study_name="jointnas", storage=url)
    kept.enqueue_trial({"x": 1})
    storage = [] if "--storage" in args else ["--storage", url]
    done = run_cli("run", *storage, *args, "--no-progress", cwd=tmp_path)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert len(optuna.load_study(study_name="jointnas", storage=url).trials) == 1


def test_a_run_killed_mid_trial_has_that_candidate_retrained_on_rerun(tmp_path):
    """SIGKILL during training: the heartbeat goes quiet, the rerun fails the stale trial and
    trains the same candidate again, and the budget counts it once."""
    url = f"sqlite:///{tmp_path}/hb.db"
    code = (
        "import torch; torch.set_num_threads(1)\n"
        "from jointnas.training.data import load_dataset\n"
        "from jointnas.runs.pipeline import RunConfig, run\n"
        "data = load_dataset('digits', seed=0)\n"
        f"config = RunConfig(storage={url!r}, trials=1, epochs=3, max_mflops=0.5, heartbeat=1,"
        " stop_after='coarse')\n"
        "run(config, data=data, progress=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path)
    running = optuna.trial.TrialState.RUNNING
    deadline = time.monotonic() + 120
    trials: list = []
    while time.monotonic() < deadline and not any(  # training: all params drawn, still running
        t.state == running and "stage" in t.user_attrs for t in trials
    ):
        time.sleep(0.2)
        try:
            trials = optuna.load_study(study_name="jointnas", storage=url).trials
        except KeyError:
            trials = []
    proc.kill()  # SIGKILL: no cleanup, the trial stays RUNNING
    proc.wait()
    killed = [t for t in optuna.load_study(study_name="jointnas", storage=url).trials]
    assert [t.state for t in killed] == [running]
    time.sleep(4)  # past the grace period (3 missed beats)

    config = RunConfig(
        storage=url, trials=1, epochs=3, max_mflops=0.5, heartbeat=1, stop_after="coarse"
    )
    from jointnas.training.data import load_dataset

    study = run(config, data=load_dataset("digits", seed=0), progress=False)
    first, retry = study.trials
    assert first.state == optuna.trial.TrialState.FAIL and "fail_reason" not in first.user_attrs
    assert retry.state == optuna.trial.TrialState.COMPLETE and retry.params == first.params
    assert retry.system_attrs["failed_trial"] == first.number
