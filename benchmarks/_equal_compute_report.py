"""The equal-compute comparison's table and plot (``bench_equal_compute.py`` searches).

Per method, over its seeds: the test accuracy of the retrained answer (each job's mean over
its retrain seeds; median and min-max over jobs, and the retrain seeds' own spread as the
noise of one answer), the answer's validation accuracy, the training images it spent and its
wall time. The anytime curve is the best full-budget validation accuracy a method holds after
each training, against the training images spent so far (median over seeds on a common grid).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import _common
import numpy as np


def load(runs: Path, methods: list[str], seeds: int) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for m in methods:
        jobs = [runs / f"{m}_s{s}.json" for s in range(seeds)]
        out[m] = [json.loads(p.read_text()) for p in jobs if p.is_file()]
    return out


def anytime(job: dict[str, Any], grid: np.ndarray) -> np.ndarray:
    """Best full-budget validation accuracy held after each training, on ``grid`` (images)."""
    spent, best, xs, ys = 0, np.nan, [], []
    for t in job["trainings"]:
        spent += t["images"]
        if t["full_budget"] and t["val_acc"] is not None:
            best = t["val_acc"] if np.isnan(best) else max(best, t["val_acc"])
        xs.append(spent)
        ys.append(best)
    out = np.full(len(grid), np.nan)
    for i, x in enumerate(grid):
        held = [y for xi, y in zip(xs, ys, strict=True) if xi <= x]
        out[i] = held[-1] if held else np.nan
    return out


def rows(jobs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    for m, runs in jobs.items():
        if not runs:
            continue
        test = [float(np.mean(r["test_acc"])) for r in runs]
        within = [float(np.ptp(r["test_acc"])) for r in runs if len(r["test_acc"]) > 1]
        spent = [sum(t["images"] for t in r["trainings"]) for r in runs]
        answers = [r["answer"]["val_acc"] for r in runs]
        out.append(
            {
                "method": m,
                "seeds": len(runs),
                "test_acc_median": round(float(np.median(test)), 4),
                "test_acc_min": round(float(np.min(test)), 4),
                "test_acc_max": round(float(np.max(test)), 4),
                "retrain_spread": round(float(np.median(within)), 4) if within else None,
                "val_acc_median": round(float(np.median(answers)), 4),
                "trainings_median": int(np.median([len(r["trainings"]) for r in runs])),
                "images_median": int(np.median(spent)),
                "search_minutes_median": round(
                    float(np.median([r["search_seconds"] for r in runs])) / 60, 1
                ),
            }
        )
    return out


def plot(jobs: dict[str, list[dict[str, Any]]], budget: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0, budget, 101)[1:]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (m, runs) in enumerate(jobs.items()):
        if not runs:
            continue
        curves = np.array([anytime(r, grid) for r in runs])
        with warnings.catch_warnings():  # a method with no full training yet: all-NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(curves, axis=0)
        left.plot(grid / 1e6, med, label=m)
        test = [float(np.mean(r["test_acc"])) for r in runs]
        right.scatter([i] * len(test), test, label=m)
    left.set_xlabel("training images spent (millions)")
    left.set_ylabel("best full-budget validation accuracy")
    left.set_title("anytime (median over seeds)")
    left.legend(fontsize=8)
    names = [m for m, r in jobs.items() if r]
    right.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    right.set_ylabel("test accuracy of the retrained answer")
    right.set_title("the answer, retrained, on the test set (one dot per seed)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(
    runs: Path,
    methods: list[str],
    seeds: int,
    cfg: dict[str, Any],
    stem: str,
    folder: Path = _common.RESULTS,
) -> list[dict[str, Any]]:
    """Write ``<folder>/<stem>.{csv,json,png}`` from the stored searches; return the table."""
    jobs = load(runs, methods, seeds)
    table = rows(jobs)
    if not table:
        print("no stored searches yet")
        return table
    _common.finish(stem, table, cfg, folder)
    budget = cfg["full_trainings"] * cfg["epochs"] * cfg["train_images"]
    plot(jobs, budget, folder / f"{stem}.png")
    return table
