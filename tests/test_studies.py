"""The study scripts users copy must run as shipped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

import jointnas

ROOT = Path(__file__).resolve().parents[1]
COMPLETE, PRUNED = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED


def run_script(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``studies/<name>`` as a user would. One intra-op thread: on a shared 2-core machine
    torch's default threads made a 1-epoch digits training ~40x slower."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / "studies" / name), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=env,
    )


def table(stdout: str, first: str, *, text_last: bool = False) -> list[dict[str, str]]:
    """Rows of the printed table whose header starts with ``first``, up to the first line that
    does not fit it; ``text_last``: the last column holds text with spaces."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [first])
    header = lines[start].split()
    rows = []
    for line in lines[start + 1 :]:
        cells = line.split(maxsplit=len(header) - 1) if text_last else line.split()
        if len(cells) != len(header):
            break
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


def test_fbnetv3_search_study_script_runs(tmp_path):
    url = f"sqlite:///{tmp_path}/st.db"
    done = run_script(
        "fbnetv3_search.py",
        *("--storage", url, "--dataset", "digits", "--trials", "3", "--epochs", "1"),
        *("--max-mflops", "1.5"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    study = optuna.load_study(study_name="fbnetv3-tpe", storage=url)
    assert len(study.trials) == 3
    for t in study.trials:
        assert t.system_attrs["constraints:mflops"] == t.user_attrs["mflops"] - 1.5
        if t.state == COMPLETE:
            assert t.user_attrs["mflops"] <= 1.5 and 0 <= t.value <= 1
        else:  # over the limit: pruned before any training
            assert t.state == PRUNED and t.user_attrs["mflops"] > 1.5
    assert "best val acc" in done.stdout


def test_reuse_predictor_script_finds_candidates_under_a_new_limit_and_trains_them(tmp_path):
    space = jointnas.FBNetV3Space()
    rng = np.random.default_rng(0)
    params = [space.sample(rng) for _ in range(20)]
    fitted = jointnas.predictors.XGBoostPredictor(space=space, n_estimators=20)
    fitted.fit(params, rng.uniform(0.5, 0.9, size=20)).save(tmp_path / "pred")
    done = run_script(
        "reuse_predictor.py",
        *("--predictor", str(tmp_path / "pred"), "--max-mflops", "0.6", "--max-params", "80000"),
        *("--top", "3", "--generations", "3", "--train-best", "2"),
        *("--dataset", "digits", "--epochs", "1"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    best = table(done.stdout, "rank")
    assert [r["rank"] for r in best] == ["1", "2", "3"]
    for row in best:
        assert float(row["mflops"]) <= 0.6 and int(row["params"]) <= 80000
        assert 0.5 <= float(row["predicted_acc"]) <= 0.9  # within the targets' range
    predicted = [float(r["predicted_acc"]) for r in best]
    assert predicted == sorted(predicted, reverse=True)
    assert "no training" in done.stdout
    trained = table(done.stdout.split("trained for real")[1], "rank")
    assert [r["rank"] for r in trained] == ["1", "2"]
    for row, shown in zip(trained, best, strict=False):
        assert 0 <= float(row["true_acc"]) <= 1
        for key in ("predicted_acc", "mflops"):  # the same candidates, printed at other widths
            assert float(row[key]) == pytest.approx(float(shown[key]), abs=1e-3)


def test_reuse_predictor_script_missing_directory_is_one_line(tmp_path):
    done = run_script("reuse_predictor.py", "--predictor", str(tmp_path / "nope"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no predictor directory" in lines[0] and "nope" in lines[0]


def test_autotrain_script_searches_only_the_recipe_of_a_fixed_arch(tmp_path):
    space = jointnas.FBNetV3Space()
    smallest = space.smallest_params()
    arch = {k: v for k, v in smallest.items() if k not in space.recipe_names}
    (tmp_path / "best.json").write_text(json.dumps({"params": smallest}))  # recipe keys ignored
    url = f"sqlite:///{tmp_path}/st.db"
    common = ("--storage", url, "--dataset", "digits", "--epochs", "1")
    done = run_script(
        "autotrain.py",
        *common,
        *("--fix-arch", str(tmp_path / "best.json"), "--trials", "5", "--startup", "2"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    study = optuna.load_study(study_name="fbnetv3-autotrain", storage=url)
    assert study.user_attrs["arch"] == arch
    assert [t.state for t in study.trials] == [COMPLETE] * 5
    for t in study.trials:
        assert set(t.params) == set(space.recipe_names)  # only the recipe is searched
        assert 0 <= t.value <= 1
        assert len(t.intermediate_values) == 1
    # --startup 2: 2 quasi-random recipes, then the surrogate's picks
    sources = [t.system_attrs["coarse:source"] for t in study.trials]
    assert sources[:2] == ["sobol"] * 2 and set(sources[2:]) <= {"predicted", "explore"}
    assert "0.112 MFLOPs" in done.stdout and "best val acc" in done.stdout
    assert len(table(done.stdout, "trial")) == 5
    # the same study cannot be resumed for another architecture (the default, largest one)
    again = run_script("autotrain.py", *common, "--trials", "1", cwd=tmp_path)
    assert again.returncode == 2 and "another architecture" in again.stderr
    assert len(optuna.load_study(study_name="fbnetv3-autotrain", storage=url).trials) == 5


def test_multi_objective_script_prints_the_pareto_front(tmp_path):
    url = f"sqlite:///{tmp_path}/st.db"
    done = run_script(
        "multi_objective.py",
        *("--storage", url, "--dataset", "digits", "--trials", "3", "--population", "2"),
        *("--epochs", "1", "--max-mflops", "1.5"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    study = optuna.load_study(study_name="fbnetv3-pareto", storage=url)
    assert len(study.trials) == 3
    complete = [t for t in study.trials if t.state == COMPLETE]
    assert complete
    for t in study.trials:
        if t.state == COMPLETE:
            acc, mflops = t.values
            assert 0 <= acc <= 1 and mflops == t.user_attrs["mflops"] <= 1.5
        else:  # over the cap: pruned before any training
            assert t.state == PRUNED and t.user_attrs["mflops"] > 1.5
    front = study.best_trials
    for t in front:  # nothing completed dominates a front trial
        assert not any(
            o.values[0] >= t.values[0] and o.values[1] <= t.values[1] and o.values != t.values
            for o in complete
        )
    rows = table(done.stdout, "trial")
    assert sorted(int(r["trial"]) for r in rows) == sorted(t.number for t in front)
    assert [float(r["mflops"]) for r in rows] == sorted(float(r["mflops"]) for r in rows)


def test_samplers_any_objective_script_compares_three_samplers(tmp_path):
    url = f"sqlite:///{tmp_path}/st.db"
    done = run_script(
        "samplers_any_objective.py",
        *("--storage", url, "--trials", "6", "--startup", "4", "--population", "3"),
        *("--max-leaves", "300"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {r["sampler"]: r for r in table(done.stdout, "sampler", text_last=True)}
    assert set(rows) == {"random", "coarse", "genetic"}
    for name, row in rows.items():
        study = optuna.load_study(study_name=f"sklearn-hgb-digits-{name}", storage=url)
        assert len(study.trials) == 6 and row["trials"] == "6"
        for t in study.trials:
            over = t.params["max_iter"] * t.params["max_leaf_nodes"] - 300
            assert t.system_attrs["constraints:leaves"] == over
            assert (t.state == COMPLETE) == (over <= 0)  # over budget: pruned, never fitted
        complete = [t for t in study.trials if t.state == COMPLETE]
        assert int(row["fitted"]) == len(complete)
        if name != "random":  # the jointnas samplers propose only candidates within budget
            assert len(complete) == 6
        assert float(row["best_acc"]) == round(study.best_value, 4)
        assert 0.1 < study.best_value <= 1
    coarse = optuna.load_study(study_name="sklearn-hgb-digits-coarse", storage=url)
    assert coarse.trials[-1].system_attrs["coarse:source"] in ("predicted", "explore")
