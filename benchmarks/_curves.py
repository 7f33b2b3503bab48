"""Best-so-far curves over seeds: the one way every sample-efficiency benchmark here is scored.

A run's curve is the best value after k evaluations; methods are compared by the median curve
over seeds with the 25-75% band, and by how many evaluations a method's median curve needs to
reach each baseline's final median.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

BASELINES = ("random", "qmc", "tpe", "gp", "auto", "nsga2")


def baseline_sampler(method: str, seed: int, *, population: int = 10):
    """Optuna's samplers as a user would set them up; None for a method that is not one. Optuna 5's
    TPE and NSGA-II read the constraint values each trial stores with ``set_constraint``."""
    import optuna

    if method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if method == "qmc":
        return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed)
    if method == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if method == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if method == "auto":
        from _auto_sampler import AutoSampler

        return AutoSampler(seed=seed)
    if method == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population)
    return None


def sampler_for(
    method: str,
    space,
    constraint,
    seed: int,
    *,
    startup: int | None = None,
    population: int = 10,
    constraint_batch=None,
):
    """Any method of the benchmarks: an Optuna baseline (``BASELINES``) or ours: ``coarse``
    (CoarseSampler's defaults; ``startup`` quasi-random trials first, None: its default),
    ``coarse-<surrogate>`` (the same with that surrogate, e.g. ``coarse-xgboost``,
    ``coarse-gp``, ``coarse-gp-onehot``) or ``genetic`` (``population`` per generation, with
    the XGBoost accuracy predictor). A ``+py`` suffix gives CoarseSampler the plain Python
    ``constraint`` even where a vectorised ``constraint_batch`` exists (a user's study script)."""
    baseline = baseline_sampler(method, seed, population=population)
    if baseline is not None:
        return baseline
    import jointnas

    python = method.endswith("+py")
    base = method.removesuffix("+py")
    if base == "coarse" or base.startswith("coarse-"):
        batch = None if python else constraint_batch
        surrogate = {"surrogate": base.removeprefix("coarse-")} if base != "coarse" else {}
        return jointnas.CoarseSampler(
            search_space=space.distributions,
            constraint=None if batch is not None else constraint,
            constraint_batch=batch,
            n_startup_trials=startup,
            seed=seed,
            **surrogate,
        )
    if method == "genetic":
        from jointnas.predictors import XGBoostPredictor

        return jointnas.AdaptiveGeneticSampler(
            search_space=space.distributions,
            constraint=constraint,
            predictor=XGBoostPredictor(space=space, seed=seed),
            population_size=population,
            seed=seed,
        )
    raise ValueError(f"unknown method {method!r}")


def best_so_far(values: Sequence[float], budget: int, *, floor: float = -np.inf) -> np.ndarray:
    """Running maximum of ``values`` padded (or cut) to ``budget`` points; ``floor`` before the
    first value (e.g. before the first feasible evaluation)."""
    curve = np.maximum.accumulate(np.asarray(values, dtype=float)) if len(values) else np.array([])
    if curve.size == 0:
        return np.full(budget, floor)
    curve = np.where(np.isfinite(curve), curve, floor)
    return np.pad(curve, (0, max(0, budget - len(curve))), mode="edge")[:budget]


def summarize(
    curves: dict[str, np.ndarray], baselines: Iterable[str], budget: int
) -> dict[str, dict]:
    """Final median and quartiles per method; for the others, evaluations to reach each
    baseline's final median (None: never within the budget)."""
    baselines = [b for b in baselines if b in curves]
    out = {}
    for m, c in curves.items():
        med = np.median(c, axis=0)
        out[m] = {
            "seeds": int(c.shape[0]),
            "final_median": round(float(med[-1]), 4),
            "final_q25": round(float(np.quantile(c[:, -1], 0.25)), 4),
            "final_q75": round(float(np.quantile(c[:, -1], 0.75)), 4),
            "at_third_median": round(float(med[budget // 3 - 1]), 4),
        }
    for m, c in curves.items():
        if m in baselines:
            continue
        med = np.median(c, axis=0)
        reach = {}
        for b in baselines:
            hit = np.nonzero(med >= out[b]["final_median"])[0]
            reach[b] = int(hit[0]) + 1 if hit.size else None
        out[m]["to_reach_baseline_final"] = reach
    return out


def markdown_table(
    curves: dict[str, np.ndarray], summary: dict[str, dict], checkpoints: Sequence[int]
) -> str:
    """Median best-so-far (quartiles at the last checkpoint) per method at ``checkpoints``, and
    the evaluations each non-baseline needs to reach each baseline's final median: the table
    BENCHMARKS.md quotes, written by the report so it is regenerated, never typed."""
    cps = [k for k in checkpoints if k <= min(c.shape[1] for c in curves.values())]
    head = "| method | " + " | ".join(str(k) for k in cps) + " | 25-75% at last | to reach |"
    lines = [head, "|---" * (len(cps) + 3) + "|"]
    for m, c in curves.items():
        med = np.median(c, axis=0)
        last = c[:, cps[-1] - 1]
        q = f"{np.quantile(last, 0.25):.3f}-{np.quantile(last, 0.75):.3f}"
        reach = summary[m].get("to_reach_baseline_final")
        to = ", ".join(f"{b} {v if v else 'never'}" for b, v in (reach or {}).items()) or "-"
        vals = " | ".join(f"{med[k - 1]:.3f}" for k in cps)
        lines.append(f"| {m} | {vals} | {q} | {to} |")
    return "\n".join(lines) + "\n"


def plot_panels(
    panels: Sequence[tuple[str, Sequence[str]]],
    curves: dict[str, np.ndarray],
    budget: int,
    path: Path,
    *,
    baselines: Iterable[str] = (),
    xlabel: str = "trainings",
    ylabel: str = "best value so far",
) -> None:
    """One axes per (title, methods) panel: median line, 25-75% band, dashed baselines."""
    from jointnas.plotting import axes, save

    baselines = set(baselines)
    fig, axs = axes(ncols=len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    k = np.arange(1, budget + 1)
    for ax, (title, methods) in zip(axs[0], panels, strict=True):
        shown = [m for m in methods if m in curves]
        for m in shown:
            c = curves[m]
            style = "--" if m in baselines else "-"
            (line,) = ax.plot(k, np.median(c, axis=0), style, label=f"{m} (n={c.shape[0]})")
            lo, hi = np.quantile(c, 0.25, axis=0), np.quantile(c, 0.75, axis=0)
            ax.fill_between(k, lo, hi, color=line.get_color(), alpha=0.15)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel + " (median, 25-75% band)")
        ax.legend(fontsize=8, loc="lower right")
        lows = [np.quantile(curves[m], 0.25, axis=0)[budget // 6] for m in shown]
        finite = [v for v in lows if np.isfinite(v)]
        if finite:
            top = max(np.quantile(curves[m], 0.75, axis=0)[-1] for m in shown)
            ax.set_ylim(min(finite) - 0.05 * (top - min(finite) + 1e-9), None)
    save(fig, path)
