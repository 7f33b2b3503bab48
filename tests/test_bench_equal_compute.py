"""The equal-compute comparison (``benchmarks/bench_equal_compute.py``): its accounting of
training images and anytime curves on known inputs, and (slow) one tiny search per kind of
method end to end, with the test set touched only by the retraining."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import _equal_compute_report as rep  # noqa: E402


def _job(trainings: list[tuple[int, float | None, bool]], test: list[float]) -> dict:
    return {
        "trainings": [
            {"images": n, "val_acc": acc, "full_budget": full} for n, acc, full in trainings
        ],
        "answer": {"val_acc": max(a for _, a, f in trainings if f and a is not None)},
        "test_acc": test,
        "search_seconds": 60.0,
    }


def test_anytime_counts_only_full_budget_trainings_and_every_image() -> None:
    job = _job([(100, 0.9, False), (300, 0.7, True), (300, 0.8, True), (50, 0.95, False)], [0.8])
    grid = np.array([100, 400, 700, 750, 1000])
    curve = rep.anytime(job, grid)
    assert np.isnan(curve[0])  # only an early-stopped training so far: no answer yet
    np.testing.assert_array_equal(curve[1:], [0.7, 0.8, 0.8, 0.8])


def test_rows_report_median_spread_and_the_noise_of_one_answer() -> None:
    jobs = {
        "a": [_job([(10, 0.8, True)], [0.80, 0.82]), _job([(20, 0.9, True)], [0.90, 0.90])],
        "b": [],
    }
    (row,) = rep.rows(jobs)
    assert row["method"] == "a" and row["seeds"] == 2
    assert row["test_acc_median"] == pytest.approx(0.855)
    assert (row["test_acc_min"], row["test_acc_max"]) == (0.81, 0.9)
    assert row["retrain_spread"] == pytest.approx(0.01)
    assert row["images_median"] == 15


@pytest.mark.slow
@pytest.mark.parametrize("method", ["random-sh", "pipeline-arch-only"])
def test_a_tiny_search_spends_its_budget_and_scores_its_answer(method, tmp_path) -> None:
    import bench_equal_compute as eq

    eq.STATE = tmp_path
    cfg = {
        "epochs": 2,
        "train_images": 256,
        "full_trainings": 6,
        "coarse_epochs": 1,
        "final_top": 1,
        "retrain_seeds": 1,
        "max_mflops": 2.0,
    }
    out = eq.job(method, 0, cfg)
    spent = sum(t["images"] for t in out["trainings"])
    budget = cfg["full_trainings"] * cfg["epochs"] * cfg["train_images"]
    assert budget <= spent <= budget + cfg["epochs"] * cfg["train_images"]
    assert out["answer"]["full_budget"] and len(out["test_acc"]) == 1
    assert 0.0 <= out["test_acc"][0] <= 1.0
    # a killed search leaves its storage behind: the rerun wipes it and reproduces the result
    assert (tmp_path / f"{method}_s0" / "study.db").is_file()
    again = eq.job(method, 0, cfg)
    assert again["trainings"] == out["trainings"] and again["test_acc"] == out["test_acc"]
