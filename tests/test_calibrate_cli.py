"""Fidelity calibration and the predictor commands, end to end on real (tiny) trainings."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from helpers import run_cli

from jointnas.errors import ConfigError
from jointnas.predictors import fit_on_study, load_predictor
from jointnas.runs.calibrate import ATTR, calibrate, rank_agreement, recommend_epoch
from jointnas.runs.pipeline import RunConfig, run


def test_rank_agreement_and_recommendation():
    final = np.array([0.5, 0.7, 0.9, 0.6])
    curves = np.stack([1 - final, [0.4, 0.6, 0.8, 0.3], final], axis=1)  # wrong, close, exact
    taus, rhos = rank_agreement(curves)
    assert taus[0] == pytest.approx(-1.0) and taus[2] == pytest.approx(1.0)
    assert 0 < taus[1] < 1 and rhos[2] == pytest.approx(1.0)
    assert recommend_epoch(taus, 0.6) == 2
    assert recommend_epoch([0.1, 0.2, 0.3], 0.9) == 3  # never reached: the full budget
    with pytest.raises(ValueError, match=">= 3 candidates"):
        rank_agreement(curves[:2])


def test_calibrate_stores_result_and_run_uses_the_calibrated_prefix(tmp_path, digits):
    small = digits.subset(train=256, val=128)
    config = RunConfig(storage=f"sqlite:///{tmp_path}/c.db", trials=3, epochs=3, max_mflops=0.5)
    result = calibrate(config, threshold=0.5, data=small, progress=False, plot=tmp_path / "c.png")
    assert result["candidates"] == 3 and len(result["kendall_tau"]) == 3
    assert result["kendall_tau"][-1] == pytest.approx(1.0)
    assert 1 <= result["recommended_epochs"] <= 3
    assert (tmp_path / "c.png").stat().st_size > 1000
    study = optuna.load_study(study_name="jointnas", storage=config.storage)
    assert study.user_attrs[ATTR] == result
    cal = optuna.load_study(study_name="jointnas.calibration", storage=config.storage)
    assert all(len(t.user_attrs["val_acc_curve"]) == 3 for t in cal.trials)
    with pytest.raises(ConfigError, match="epochs >= 2"):
        calibrate(RunConfig(storage=config.storage, epochs=1), data=small, progress=False)

    e = result["recommended_epochs"]
    early = RunConfig(storage=config.storage, trials=2, epochs=e, schedule_epochs=3, max_mflops=0.5)
    trials = run(early, data=small, progress=False).trials
    assert all(len(t.user_attrs["val_acc_curve"]) == e for t in trials)
    attrs = optuna.load_study(study_name="jointnas", storage=config.storage).user_attrs
    assert (attrs["jointnas:epochs"], attrs["jointnas:schedule_epochs"]) == (e, 3)


def test_predictor_cli_fit_eval_and_bad_input(tmp_path, digits):
    url = f"sqlite:///{tmp_path}/p.db"
    small = digits.subset(train=256, val=128)
    run(RunConfig(storage=url, trials=8, epochs=1, max_mflops=0.5), data=small, progress=False)

    out = tmp_path / "xgb"
    done = run_cli(
        "predictor",
        "fit",
        "--storage",
        url,
        "--kind",
        "xgboost",
        "--out",
        str(out),
        "--cv",
        "2",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "fitted xgboost predictor on 8 trials" in done.stdout and "2-fold CV" in done.stdout
    model = load_predictor(out)
    assert model.training["source"]["study"] == "jointnas" and "cv" in model.metrics

    done = run_cli("predictor", "eval", str(out), "--storage", url, cwd=tmp_path)
    assert done.returncode == 0 and "Kendall tau" in done.stdout, done.stderr

    for args, message in [
        (("predictor", "eval", str(tmp_path / "nope"), "--storage", url), "no predictor directory"),
        (("predictor", "fit", "--storage", url, "--study", "nope", "--out", "x"), "no study named"),
        (("run", "--storage", url, "--study", "fresh", "--epochs", "calibrated"), "no calibration"),
    ]:
        done = run_cli(*args, cwd=tmp_path)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2 and len(lines) == 1 and message in lines[0], done.stderr

    with pytest.raises(ConfigError, match="needs at least"):
        empty = f"sqlite:///{tmp_path}/e.db"
        optuna.create_study(storage=empty, study_name="jointnas").set_user_attr(
            "jointnas:space", "fbnetv3-small"
        )
        fit_on_study(empty, "jointnas", kind="xgboost")
