"""Reusing the shipped predictor for new limits: feasible, distinct, no training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_cli

from jointnas.constraints import Limits
from jointnas.errors import InfeasibleConstraintError
from jointnas.predictors import load_predictor
from jointnas.spaces.nets.cost import cost
from jointnas.tools.reuse import pareto, search_best

SHIPPED = Path(__file__).resolve().parents[1] / "predictors" / "mnist5k-xgboost"


@pytest.fixture(scope="module")
def predictor():
    return load_predictor(SHIPPED)


def test_search_best_is_feasible_distinct_and_ranked(predictor):
    frame = search_best(predictor, Limits(mflops=0.8, params=60_000), top=4, generations=5)
    assert len(frame) == 4 and frame["predicted_acc"].is_monotonic_decreasing
    space = predictor.space
    archs = set()
    for row in frame.to_dict("records"):
        params = {n: row[n] for n in space.distributions}
        c = cost(space.decode(params).arch, num_classes=10, in_channels=1)
        assert c.mflops == pytest.approx(row["mflops"]) and c.mflops <= 0.8
        assert c.params == row["params"] <= 60_000
        archs.add(str(sorted(space.arch_params(params).items())))
    assert len(archs) == 4  # one row per architecture
    assert 0 < frame["predicted_acc"].max() < 1  # logit targets: never above 1
    with pytest.raises(InfeasibleConstraintError, match=r"smallest candidate needs 0\.112"):
        search_best(predictor, Limits(mflops=0.05), generations=1)


def test_pareto_front_is_monotone(predictor, tmp_path):
    from jointnas.tools.reuse import plot_pareto

    frame = pareto(predictor, [0.3, 0.6, 1.2], generations=4, children=512)
    assert (frame["mflops"] <= frame["limit_mflops"] + 1e-9).all()
    front = frame[frame["on_front"]]
    assert front["mflops"].is_monotonic_increasing
    assert front["predicted_acc"].is_monotonic_increasing and len(front) >= 1
    assert plot_pareto(frame, tmp_path / "p.png").stat().st_size > 1000


def test_search_cli_json_and_errors(tmp_path):
    done = run_cli(
        "search",
        "--predictor",
        str(SHIPPED),
        "--max-mflops",
        "1.0",
        "--top",
        "3",
        "--json",
        "--generations",
        "5",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert len(rows) == 3 and all(r["mflops"] <= 1.0 for r in rows)
    for args, message in [
        (("search", "--predictor", str(SHIPPED)), "give a limit"),
        (("search", "--predictor", str(tmp_path), "--max-mflops", "1"), "metadata.json is missing"),
        (
            ("pareto", "--predictor", str(SHIPPED), "--min-mflops", "2", "--max-mflops", "1"),
            "below",
        ),
    ]:
        done = run_cli(*args, cwd=tmp_path)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2 and len(lines) == 1 and message in lines[0], done.stderr
