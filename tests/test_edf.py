"""``jointnas edf``: the EDF/KS/bootstrap analysis on synthetic errors, FLOPs-band sampling, and
the command end to end on tiny trainings (two spaces, resume, shared work, bad input)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, replace

import numpy as np
import optuna
import pandas as pd
import pytest
from scipy import stats

from jointnas import cli
from jointnas.designs.edf import (
    EDFConfig,
    EDFObjective,
    NoCandidateLeft,
    draw_in_band,
    edf_study_name,
    index_states,
    run_edf,
)
from jointnas.designs.edf_analysis import (
    bootstrap_ks,
    edf,
    edf_curve,
    ks_statistic,
    legend_label,
    pairwise_ks,
    write_report,
)
from jointnas.errors import ConfigError, InfeasibleConstraintError
from jointnas.spaces import get_space, registry
from jointnas.spaces.fbnetv3 import FBNetV3Space
from jointnas.spaces.fixed_recipe import FixedRecipeSpace
from jointnas.spaces.recipe import Recipe
from jointnas.storage import keys

TASK = {"num_classes": 10, "in_channels": 1}
BAND = (0.2, 0.5)
#: a second registered space for the end-to-end runs: FBNetV3-small with resolution and the
#: last stage pinned (a narrower design space, not one of the spaces being written elsewhere)
PLUGIN = '''
from jointnas.spaces import register
from jointnas.spaces.fbnetv3 import FBNetV3Space

def narrow():
    """FBNetV3-small at resolution 16 with a one-block last stage (tests)."""
    return FBNetV3Space(preset="small", fix={"resolution": 16, "s4_depth": 1})

register("edf-test-narrow", narrow)
'''


def _narrow() -> FBNetV3Space:
    return FBNetV3Space(preset="small", fix={"resolution": 16, "s4_depth": 1})


@pytest.fixture
def narrow_registered(monkeypatch):
    """The narrow space registered in this process only for the test."""
    monkeypatch.setitem(
        registry._REGISTRY,
        "edf-test-narrow",
        registry.Entry("edf-test-narrow", _narrow, __name__, "tests"),
    )


# -- analysis on synthetic errors ----------------------------------------------------------------
def test_edf_is_the_fraction_strictly_below_and_its_curve_steps_once_per_value():
    errors = [0.4, 0.2, 0.1, 0.2]
    assert edf(errors, [0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5]).tolist() == [
        0.0,
        0.0,
        0.25,
        0.25,
        0.75,
        0.75,
        1.0,
    ]
    x, y = edf_curve(errors)
    assert x.tolist() == [0.1, 0.1, 0.2, 0.4] and y.tolist() == [0.0, 0.25, 0.75, 1.0]
    assert legend_label("anynetx-a", [0.1, 0.3]) == "anynetx-a: 2 | 10.0 | 20.0"
    with pytest.raises(ValueError, match="at least one"):
        edf([], [0.5])


def test_ks_statistic_equals_scipy_with_and_without_ties():
    rng = np.random.default_rng(0)
    for na, nb, tied in [(5, 7, True), (40, 40, True), (33, 61, False), (1, 3, False)]:
        a, b = rng.normal(0.3, 0.05, na), rng.normal(0.32, 0.08, nb)
        if tied:  # validation errors are multiples of 1/num_val
            a, b = np.round(a * 50) / 50, np.round(b * 50) / 50
        assert ks_statistic(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    rows = pairwise_ks({"x": a, "y": b, "empty": []}, resamples=50)
    assert len(rows) == 1 and (rows[0]["a"], rows[0]["b"]) == ("x", "y")
    scipy = stats.ks_2samp(a, b)
    assert rows[0]["ks"] == scipy.statistic and rows[0]["pvalue"] == scipy.pvalue


def test_bootstrap_interval_is_seeded_and_holds_the_statistic():
    rng = np.random.default_rng(1)
    a = np.round(rng.normal(0.30, 0.04, 80) * 100) / 100
    b = np.round(rng.normal(0.34, 0.04, 90) * 100) / 100
    d = ks_statistic(a, b)
    lo, hi = bootstrap_ks(a, b, resamples=1000, level=0.95, seed=7)
    assert 0.0 <= lo <= d <= hi <= 1.0 and hi - lo > 0.05
    assert bootstrap_ks(a, b, resamples=1000, seed=7) == (lo, hi)
    assert bootstrap_ks(a, b, resamples=1000, seed=8) != (lo, hi)
    lo50, hi50 = bootstrap_ks(a, b, resamples=1000, level=0.5, seed=7)
    assert lo <= lo50 <= hi50 <= hi
    with pytest.raises(ValueError, match="level"):
        bootstrap_ks(a, b, level=1.0)


def test_report_writes_csv_ks_json_and_the_edf_plot(tmp_path):
    rng = np.random.default_rng(2)
    rows = [
        {
            "space": s,
            "trial": i,
            "index": i,
            "error": float(e),
            "mflops": 1.0,
            "params": 9,
            "acts": 3,
        }
        for s, mu in (("a", 0.3), ("b", 0.35), ("c", 0.3))
        for i, e in enumerate(rng.normal(mu, 0.03, 30))
    ]
    out = write_report(rows, tmp_path / "r", spaces=["a", "b", "c", "d"], resamples=200, seed=3)
    table = pd.read_csv(out["paths"]["csv"])
    assert len(table) == 90 and list(table.columns) == [
        "space",
        "trial",
        "index",
        "error",
        "mflops",
        "params",
        "acts",
    ]
    ks = pd.read_csv(out["paths"]["ks_csv"])
    assert [tuple(r) for r in ks[["a", "b"]].itertuples(index=False)] == [
        ("a", "b"),
        ("a", "c"),
        ("b", "c"),
    ]
    assert (ks["ci_low"] <= ks["ci_high"]).all()
    summary = json.loads((tmp_path / "r" / "edf_summary.json").read_text())
    assert summary["spaces"]["d"] == {"n": 0} and summary["spaces"]["a"]["n"] == 30
    assert summary["pairs"][0]["ks"] == pytest.approx(ks.loc[0, "ks"])
    png = (tmp_path / "r" / "edf.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


# -- sampling ------------------------------------------------------------------------------------
def test_draws_are_distinct_in_band_seeded_and_extend_as_a_prefix():
    space = get_space("fbnetv3-small")
    draws = draw_in_band(space, BAND, n=40, task=TASK, seed=0)
    assert len({json.dumps(d, sort_keys=True) for d in draws}) == 40
    assert all(set(d) == set(space.arch_names) for d in draws)
    fixed = FixedRecipeSpace(space, Recipe())
    for d in draws:
        c = fixed.decode(d)
        assert BAND[0] <= space.cost(c.arch, **TASK).mflops <= BAND[1]
        assert c.recipe == Recipe() and fixed.to_params(c) == d
    assert draw_in_band(space, BAND, n=60, task=TASK, seed=0)[:40] == draws
    assert draw_in_band(space, BAND, n=40, task=TASK, seed=1) != draws
    with pytest.raises(InfeasibleConstraintError, match="misses space 'fbnetv3-small'"):
        draw_in_band(space, (50.0, 60.0), n=3, task=TASK, seed=0)
    with pytest.raises(InfeasibleConstraintError, match="of 2000 uniform draws fell in the band"):
        draw_in_band(space, (0.3, 0.3001), n=50, task=TASK, seed=0, max_draws=2000)


def test_config_refuses_bad_input_in_one_line():
    ok = {"spaces": ("fbnetv3-small",), "mflops_band": BAND}
    for bad, message in [
        ({"spaces": ("nope",)}, "unknown space 'nope'"),
        ({"spaces": ("fbnetv3-small", "fbnetv3-small")}, "distinct space names"),
        ({"mflops_band": (5.0, 2.0)}, "need 0 <= LO < HI"),
        ({"mflops_band": (-1.0, 2.0)}, "need 0 <= LO < HI"),
        ({"n": 1}, "--n must be >= 2"),
        ({"epochs": 0}, "--epochs must be >= 1"),
    ]:
        with pytest.raises(ConfigError, match=message):
            EDFConfig(**{**ok, **bad})


# -- end to end ----------------------------------------------------------------------------------
def _snapshot(storage, study: str) -> list[tuple]:
    trials = optuna.load_study(study_name=study, storage=storage).trials
    return [(t.number, t.state.name, t.value, t.datetime_complete) for t in trials]


def test_run_edf_trains_in_band_resumes_and_extends(tmp_path, digits, narrow_registered):
    small = digits.subset(train=256, val=128)
    url = f"sqlite:///{tmp_path}/edf.db"
    spaces = ("fbnetv3-small", "edf-test-narrow")
    config = EDFConfig(
        spaces=spaces, mflops_band=BAND, n=2, epochs=1, storage=url, out=str(tmp_path / "o")
    )
    result = run_edf(config, data=small, progress=False)
    assert result.states == {
        s: {"complete": 2, "diverged": 0, "pending": 0, "missing": 0} for s in spaces
    }
    for key in spaces:
        study = optuna.load_study(study_name=edf_study_name("jointnas", key), storage=url)
        space = get_space(key)
        assert study.user_attrs[keys.EDF_RECIPE] == {**asdict(Recipe()), "batch_size": 128}
        for t in study.trials:
            assert t.state.name == "COMPLETE" and t.user_attrs["stage"] == keys.EDF
            assert BAND[0] <= t.user_attrs["mflops"] <= BAND[1]
            assert t.user_attrs[keys.ERROR] == pytest.approx(1 - t.value)
            assert set(t.params) == set(space.arch_names)  # no recipe: one recipe for all
    assert (tmp_path / "o" / "edf.png").is_file() and not (tmp_path / "o" / "checkpoints").exists()
    assert len(result.report["pairs"]) == 1 and len(result.rows) == 4

    before = {k: _snapshot(url, edf_study_name("jointnas", k)) for k in spaces}
    again = run_edf(config, data=small, progress=False)
    assert {k: _snapshot(url, edf_study_name("jointnas", k)) for k in spaces} == before
    assert again.rows == result.rows

    # a training cut off (FAIL, no reason) is trained again; a larger n only adds the new ones
    name = edf_study_name("jointnas", "fbnetv3-small")
    study = optuna.load_study(study_name=name, storage=url)
    lost = draw_in_band(get_space("fbnetv3-small"), BAND, n=3, task=TASK, seed=0)[2]
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.FAIL,
            params=lost,
            distributions={k: study.trials[0].distributions[k] for k in lost},
            user_attrs={keys.EDF_INDEX: 2},
        )
    )
    assert index_states(study, 3) == ["complete", "complete", "missing"]
    bigger = run_edf(replace(config, n=3), data=small, progress=False)
    after = _snapshot(url, name)
    assert after[:3] == before["fbnetv3-small"] + [after[2]] and after[2][1] == "FAIL"
    assert [t[1] for t in after[3:]] == ["COMPLETE"] and len(bigger.rows) == 6
    assert study.trials[-1].params == lost and study.trials[-1].user_attrs[keys.EDF_INDEX] == 2

    with pytest.raises(ConfigError, match="was made with jointnas:epochs=1, not 2"):
        run_edf(replace(config, epochs=2), data=small, progress=False)


def test_a_diverged_model_is_not_retrained_and_a_stray_trial_is_skipped(tmp_path, nan_digits):
    url = f"sqlite:///{tmp_path}/nan.db"
    config = EDFConfig(
        spaces=("fbnetv3-small",), mflops_band=BAND, n=2, epochs=1, storage=url, out=str(tmp_path)
    )
    first = run_edf(config, data=nan_digits.subset(train=64, val=32), progress=False)
    assert first.states["fbnetv3-small"]["diverged"] == 2 and first.rows == []
    name = edf_study_name("jointnas", "fbnetv3-small")
    before = _snapshot(url, name)
    run_edf(config, data=nan_digits.subset(train=64, val=32), progress=False)
    assert _snapshot(url, name) == before

    study = optuna.load_study(study_name=name, storage=url)
    trial = study.ask()  # what optimize makes when another process took the last WAITING trial
    with pytest.raises(NoCandidateLeft):
        EDFObjective(objective=None)(trial)  # type: ignore[arg-type]
    assert keys.SKIPPED in study.trials[-1].user_attrs and trial.params == {}


def _edf_cli(tmp_path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "jointnas.cli",
        "edf",
        "--space",
        "fbnetv3-small,edf-test-narrow",
        "--mflops-band",
        f"{BAND[0]},{BAND[1]}",
        "--n",
        "3",
        "--epochs",
        "3",  # long enough (about 1 s a model) that both processes find work in the queue
        "--dataset",
        "digits",
        "--storage",
        str(tmp_path / "edf.log"),
        "--threads",
        "1",
        "--no-progress",
        "--resamples",
        "200",
        *extra,
    ]


def test_cli_two_processes_share_the_work_then_a_rerun_trains_nothing(tmp_path):
    (tmp_path / "edf_test_plugin.py").write_text(PLUGIN)
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "JOINTNAS_SPACES": "edf_test_plugin"}
    env["OMP_NUM_THREADS"] = "1"
    procs = [
        subprocess.Popen(
            _edf_cli(tmp_path, "--out", str(tmp_path / f"out{i}")),
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "edf.log"))
    )
    workers = set()
    for key in ("fbnetv3-small", "edf-test-narrow"):
        trials = optuna.load_study(study_name=f"jointnas.edf.{key}", storage=storage).trials
        done = [t for t in trials if t.state.name == "COMPLETE"]
        assert sorted(t.user_attrs[keys.EDF_INDEX] for t in done) == [0, 1, 2]  # each once
        assert all(keys.SKIPPED in t.user_attrs for t in trials if t.state.name != "COMPLETE")
        workers |= {t.user_attrs["worker"] for t in done}
    assert len(workers) == 2  # both processes trained
    for i in range(2):  # each waited for the other, so each report has every model
        assert len(pd.read_csv(tmp_path / f"out{i}" / "edf.csv")) == 6
        assert "fbnetv3-small vs edf-test-narrow" in outs[i][0]

    names = [f"jointnas.edf.{k}" for k in ("fbnetv3-small", "edf-test-narrow")]
    before = [_snapshot(storage, name) for name in names]
    rerun = subprocess.run(
        _edf_cli(tmp_path, "--out", str(tmp_path / "out2")),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "3/3" in rerun.stdout and (tmp_path / "out2" / "edf.png").is_file()
    table = pd.read_csv(tmp_path / "out2" / "edf.csv")
    assert len(table) == 6 and table["mflops"].between(*BAND).all()
    assert [_snapshot(storage, name) for name in names] == before  # nothing new, none retrained


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--space", "nope", "--mflops-band", "0.2,0.5"], "unknown space 'nope'"),
        (["--space", "fbnetv3-small", "--mflops-band", "5,2"], "need 0 <= LO < HI"),
        (["--space", "fbnetv3-small", "--mflops-band", "5"], "expected LO,HI in MFLOPs"),
        (["--space", "fbnetv3-small", "--mflops-band", "0.2,0.5", "--n", "1"], "--n must be >= 2"),
        (["--space", "fbnetv3-small", "--mflops-band", "50,60", "--dataset", "digits"], "misses"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(args, message, tmp_path, capsys):
    try:
        code = cli.main(["edf", *args, "--storage", str(tmp_path / "x.log")])
    except SystemExit as exc:  # argparse's own errors (a malformed value)
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.log").exists()  # nothing was written
