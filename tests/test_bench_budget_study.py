"""The budget study's analysis (``benchmarks/_budget_report.py``): noise, recipe effect, the
verdict and the ranking taus on accuracies whose answer is known; and one real job (slow)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import _budget_report as rep  # noqa: E402

ARCHS = ["a0", "a1", "a2", "a3"]
RECIPES = ["default", "good", "bad"]


def _cells(noise: float, good: float = 0.05) -> dict:
    """At 1 epoch the recipes tie and the architectures rank a0 < a1 < a2 < a3; at 10 epochs
    "good" adds ``good``, "bad" loses 0.02, and the ranking is reversed. The two seeds lie
    ``noise`` either side of each cell's mean (a seed sd of ``noise * sqrt(2)``)."""
    cells = {}
    for i, a in enumerate(ARCHS):
        for r in RECIPES:
            for b, base, gain in (
                (1, 0.70 + 0.01 * i, {"default": 0, "good": 0, "bad": 0}),
                (10, 0.90 - 0.01 * i, {"default": 0, "good": good, "bad": -0.02}),
            ):
                cells[(a, r, b)] = [base + gain[r] + noise, base + gain[r] - noise]
    return cells


def test_summary_finds_the_effect_the_noise_and_the_rank_reversal() -> None:
    rows, per_recipe = rep.summarise(_cells(0.001), ARCHS, RECIPES, [1, 10], val_images=10_000)
    short, long = rows
    assert short["archs_beyond_noise"] == "0/4" and long["archs_beyond_noise"] == "4/4"
    assert long["effect_median"] == pytest.approx(0.05, abs=0.003)
    assert long["spread_median"] == pytest.approx(0.07, abs=0.003)
    assert long["seed_sd"] == pytest.approx(0.001 * np.sqrt(2), abs=1e-4)
    assert long["diff_noise"] == pytest.approx(0.001 * np.sqrt(2), abs=1e-4)
    assert long["val_sampling_error"] == pytest.approx(np.sqrt(0.9 * 0.1 / 10_000), abs=3e-4)
    assert short["tau_archs_vs_longest"] == -1.0  # the short budget ranks them backwards
    assert long["tau_archs_vs_longest"] == 1.0
    gains = {(r["budget_epochs"], r["recipe"]): r["gain_vs_default_mean"] for r in per_recipe}
    assert gains[(10, "good")] == pytest.approx(0.05, abs=0.002)
    assert gains[(10, "bad")] == pytest.approx(-0.02, abs=0.002)
    assert "From 10 epoch(s)" in rep.verdict(rows)


def test_the_searched_effect_leaves_out_what_the_space_cannot_reach() -> None:
    rows, _ = rep.summarise(
        _cells(0.001), ARCHS, RECIPES, [1, 10], val_images=10_000, outside=("good",)
    )
    assert rows[1]["effect_median"] == pytest.approx(0.05, abs=0.003)
    assert rows[1]["searched_effect_median"] == pytest.approx(-0.02, abs=0.003)  # only "bad"
    assert rows[1]["searched_beyond_noise"] == "0/4"


def test_effects_inside_the_noise_are_not_called_effects() -> None:
    rows, _ = rep.summarise(_cells(0.02, good=0.03), ARCHS, RECIPES, [1, 10], val_images=10_000)
    assert rows[1]["effect_median"] == pytest.approx(0.03, abs=1e-9)  # 0.03 < 2 x 0.028
    assert rep.verdict(rows).startswith("At no budget")


@pytest.mark.slow
def test_one_job_trains_on_the_held_out_split() -> None:
    import bench_budget_study as study

    cfg = {"train_images": 256, "val_fraction": study.VAL_FRACTION, "dataset": "fashion-mnist"}
    out = study.job("regnet-0", "aug-off", 1, 0, cfg)
    assert out["val_images"] == 10_000 and out["train_images"] == 256
    assert len(out["val_acc"]) == 1 and 0.0 <= out["final_acc"] <= 1.0
    assert out["policy"] == "none"
