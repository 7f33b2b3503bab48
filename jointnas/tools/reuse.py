"""Reuse a fitted predictor for new constraints, without training: seconds, not hours.

The predictor already knows the space; a new limit only changes which candidates are feasible.
``search_best`` runs the vectorised fine search under the limit and returns the best predicted
candidates; ``pareto`` repeats it over a range of MFLOPs limits and keeps the front of predicted
accuracy vs MFLOPs, from one predictor in one run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from jointnas.constraints import Limits, cost_feasibility
from jointnas.errors import InfeasibleConstraintError
from jointnas.runs.search import BestPerArch, fine_search

if TYPE_CHECKING:  # a type only: loading a predictor is the caller's (and may import torch)
    from jointnas.predictors.base import Predictor


def _table(predictor: Predictor, X: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    task = predictor.task
    c = predictor.space.cost_batch(X, num_classes=task.num_classes, in_channels=task.in_channels)
    rows = []
    for i, params in enumerate(predictor.space.decode_matrix(X)):
        rows.append(
            {
                "predicted_acc": float(predicted[i]),
                "mflops": float(c.flops[i]) / 1e6,
                "params": int(c.params[i]),
                "acts": int(c.acts[i]),
                **params,
            }
        )
    return pd.DataFrame(rows)


def _smallest(predictor: Predictor) -> str:
    space, task = predictor.space, predictor.task
    arch = space.decode(space.smallest_params()).arch
    c = space.cost(arch, num_classes=task.num_classes, in_channels=task.in_channels)
    mflops, params = c.flops / 1e6, int(c.params)
    return f" (the smallest candidate needs {mflops:g} mflops, {params} params)"


def search_best(
    predictor: Predictor,
    limits: Limits,
    *,
    top: int = 5,
    seed: int = 0,
    population: int = 64,
    children: int = 4096,
    generations: int = 30,
) -> pd.DataFrame:
    """The ``top`` best predicted candidates within ``limits``, one per architecture (the best
    recipe found for each), best first, with their cost."""
    task = predictor.task
    feasible = cost_feasibility(
        predictor.space, limits, num_classes=task.num_classes, in_channels=task.in_channels
    )
    archs = BestPerArch(predictor.space)
    try:
        result = fine_search(
            predictor.space,
            predictor,
            feasible=feasible,
            population=max(population, top),
            children=children,
            generations=generations,
            seed=seed,
            on_generation=archs,
        )
    except InfeasibleConstraintError as exc:
        raise InfeasibleConstraintError(
            f"limits {limits.active()}: {exc}{_smallest(predictor)}"
        ) from None
    archs(-1, result.X, result.predicted, {})  # also covers generations=0
    X, predicted = archs.top(top)
    frame = _table(predictor, X, predicted)
    frame.attrs.update(scored=result.scored, seconds=result.seconds)
    return frame


def pareto(
    predictor: Predictor,
    mflops_limits: list[float],
    *,
    seed: int = 0,
    generations: int = 20,
    children: int = 2048,
) -> pd.DataFrame:
    """Best predicted candidate under each MFLOPs limit, then only the non-dominated ones
    (no cheaper candidate predicted at least as accurate), sorted by MFLOPs."""
    rows = []
    for limit in sorted(mflops_limits):
        best = search_best(
            predictor,
            Limits(mflops=limit),
            top=1,
            seed=seed,
            generations=generations,
            children=children,
        )
        rows.append(best.assign(limit_mflops=limit))
    frame = pd.concat(rows, ignore_index=True).sort_values("mflops", kind="stable")
    frame["on_front"] = frame["predicted_acc"] > frame["predicted_acc"].cummax().shift(
        fill_value=-np.inf
    )
    return frame.reset_index(drop=True)


def plot_pareto(frame: pd.DataFrame, path: str | Path, *, title: str = "") -> Path:
    from jointnas.plotting import axes, save

    fig, ax = axes()
    front = frame[frame["on_front"]]
    ax.plot(front["mflops"], front["predicted_acc"], "o-", label="predicted front")
    off = frame[~frame["on_front"]]
    if len(off):
        ax.plot(off["mflops"], off["predicted_acc"], "x", color="grey", label="dominated")
    for _, row in frame.iterrows():
        ax.annotate(f"≤{row['limit_mflops']:g}", (row["mflops"], row["predicted_acc"]), fontsize=7)
    ax.set(xlabel="MFLOPs", ylabel="predicted accuracy", title=title or "Predicted Pareto front")
    ax.legend(loc="lower right")
    return save(fig, path)
