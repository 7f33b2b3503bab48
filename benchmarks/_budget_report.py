"""The budget study's analysis: recipe effect against seed noise by budget, and how well a short
budget ranks what the longest one ranks (``bench_budget_study.py`` trains, this reads).

Per budget:
* **seed noise**: the pooled standard deviation of final validation accuracy over seeds of one
  (architecture, recipe) cell; a difference of two cells' means over ``k`` seeds has noise
  ``sd * sqrt(2 / k)``. The validation set's binomial sampling error is stated beside it.
* **recipe effect** per architecture: the best recipe's mean minus the default's, and the
  spread (best minus worst recipe). An effect "beyond noise" exceeds twice the noise of a
  difference (the best of five is picked after the fact, so this flatters recipes a little).
* **Kendall tau** between the ranking at this budget and at the longest: of the architectures
  under the default recipe, and of every (architecture, recipe) cell; the ceiling is the tau
  between two seeds at the longest budget.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import _common
import numpy as np
from scipy.stats import kendalltau


def load(runs: Path, archs, recipes, budgets, seeds: int) -> dict[tuple[str, str, int], list]:
    """``(arch, recipe, budget) -> [final accuracy per stored seed]``."""
    cells: dict[tuple[str, str, int], list[float]] = {}
    for a in archs:
        for r in recipes:
            for b in budgets:
                accs = []
                for s in range(seeds):
                    path = runs / f"{a}__{r}__e{b}__s{s}.json"
                    if path.is_file():
                        accs.append(json.loads(path.read_text())["final_acc"])
                if accs:
                    cells[(a, r, b)] = accs
    return cells


def _tau(x: list[float], y: list[float]) -> float | None:
    if len(x) < 3:
        return None
    t = kendalltau(x, y).statistic
    return None if t is None or math.isnan(t) else round(float(t), 3)


def summarise(
    cells, archs, recipes, budgets, val_images: int, outside: tuple[str, ...] = ()
) -> tuple[list[dict], list[dict]]:
    """One row per budget (effect, noise, tau) and one per (budget, recipe) (mean gain).
    ``outside``: recipes the joint space cannot reach (a data setting, not a recipe axis); the
    ``searched_*`` columns give the effect of the best of the others."""
    mean = {k: float(np.mean(v)) for k, v in cells.items()}
    longest = max(b for (_, _, b) in cells) if cells else None
    rows, per_recipe = [], []
    for b in budgets:
        here = {k: v for k, v in cells.items() if k[2] == b}
        if not here:
            continue
        variances = [np.var(v, ddof=1) for v in here.values() if len(v) > 1]
        sd = float(np.sqrt(np.mean(variances))) if variances else float("nan")
        k = min(len(v) for v in here.values())
        diff_noise = sd * math.sqrt(2 / k) if k > 1 else float("nan")
        effects, spreads, searched = [], [], []
        for a in archs:
            have = [r for r in recipes if (a, r, b) in mean]
            if "default" not in have or len(have) < 2:
                continue
            others = [mean[(a, r, b)] for r in have if r != "default"]
            effects.append(max(others) - mean[(a, "default", b)])
            inside = [mean[(a, r, b)] for r in have if r != "default" and r not in outside]
            if inside:
                searched.append(max(inside) - mean[(a, "default", b)])
            spreads.append(max(mean[(a, r, b)] for r in have) - min(mean[(a, r, b)] for r in have))
        p = float(np.mean(list(mean[k] for k in here)))
        row: dict[str, Any] = {
            "budget_epochs": b,
            "cells": len(here),
            "seeds": k,
            "mean_acc": round(p, 4),
            "seed_sd": round(sd, 4),
            "diff_noise": round(diff_noise, 4),
            "val_sampling_error": round(math.sqrt(p * (1 - p) / val_images), 4),
            "effect_median": round(float(np.median(effects)), 4) if effects else None,
            "effect_min": round(float(np.min(effects)), 4) if effects else None,
            "effect_max": round(float(np.max(effects)), 4) if effects else None,
            "spread_median": round(float(np.median(spreads)), 4) if spreads else None,
            "archs_beyond_noise": (
                f"{sum(e > 2 * diff_noise for e in effects)}/{len(effects)}" if effects else ""
            ),
        }
        if outside and searched:
            row["searched_effect_median"] = round(float(np.median(searched)), 4)
            row["searched_beyond_noise"] = (
                f"{sum(e > 2 * diff_noise for e in searched)}/{len(searched)}"
            )
        if longest is not None:
            row |= _taus(mean, cells, archs, recipes, b, longest)
        rows.append(row)
        for r in recipes:
            gains = [
                mean[(a, r, b)] - mean[(a, "default", b)]
                for a in archs
                if (a, r, b) in mean and (a, "default", b) in mean
            ]
            if gains and r != "default":
                per_recipe.append(
                    {
                        "budget_epochs": b,
                        "recipe": r,
                        "gain_vs_default_mean": round(float(np.mean(gains)), 4),
                        "gain_min": round(float(np.min(gains)), 4),
                        "gain_max": round(float(np.max(gains)), 4),
                        "archs": len(gains),
                    }
                )
    return rows, per_recipe


def _taus(mean, cells, archs, recipes, b: int, longest: int) -> dict[str, Any]:
    pairs = [(a, "default") for a in archs]
    both = [p for p in pairs if (*p, b) in mean and (*p, longest) in mean]
    tau_archs = _tau([mean[(*p, b)] for p in both], [mean[(*p, longest)] for p in both])
    every = [
        (a, r) for a in archs for r in recipes if (a, r, b) in mean and (a, r, longest) in mean
    ]
    tau_all = _tau([mean[(*p, b)] for p in every], [mean[(*p, longest)] for p in every])
    seeded = [(a, r) for a in archs for r in recipes if len(cells.get((a, r, b), [])) > 1]
    ceiling = _tau([cells[(*p, b)][0] for p in seeded], [cells[(*p, b)][1] for p in seeded])
    return {
        "tau_archs_vs_longest": tau_archs,
        "tau_cells_vs_longest": tau_all,
        "tau_seed_vs_seed": ceiling,
    }


def verdict(rows: list[dict]) -> str:
    """The plain statement: from which budget the recipe choice matters beyond noise (and, when
    some recipes lie outside the joint space, what the reachable ones gain)."""
    first = _first_budget(rows)
    reach = [r for r in rows if "searched_effect_median" in r]
    if not reach:
        return first
    gains = ", ".join(
        f"{r['searched_effect_median']:+.4f} at {r['budget_epochs']} ({r['searched_beyond_noise']})"
        for r in reach
    )
    return (
        f"{first} Of the recipes the joint space can reach, the best one's median gain over the "
        f"default is {gains} (epochs; architectures beyond noise)."
    )


def _first_budget(rows: list[dict]) -> str:
    for row in rows:
        beyond, total = (int(x) for x in row["archs_beyond_noise"].split("/"))
        if row["effect_median"] is not None and beyond * 2 > total:
            return (
                f"From {row['budget_epochs']} epoch(s) on this task the best recipe beats the "
                f"default by more than twice the noise of a difference on {beyond} of {total} "
                f"architectures (median gain {row['effect_median']:+.4f}, noise "
                f"{row['diff_noise']:.4f})."
            )
    last = rows[-1] if rows else None
    if last is None:
        return "No jobs stored yet."
    return (
        f"At no budget up to {last['budget_epochs']} epochs does the best recipe beat the default "
        f"beyond noise on most architectures (median gain {last['effect_median']}, noise "
        f"{last['diff_noise']})."
    )


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b = [r["budget_epochs"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    med = [r["effect_median"] for r in rows]
    lo = [r["effect_median"] - r["effect_min"] for r in rows]
    hi = [r["effect_max"] - r["effect_median"] for r in rows]
    left.errorbar(b, med, yerr=[lo, hi], marker="o", capsize=4, label="best recipe - default")
    left.plot(b, [r["spread_median"] for r in rows], "s--", label="spread across recipes")
    if all("searched_effect_median" in r for r in rows):
        reach = [r["searched_effect_median"] for r in rows]
        left.plot(b, reach, "^-", label="best recipe the joint space reaches - default")
    left.plot(b, [2 * r["diff_noise"] for r in rows], "k:", label="2 x noise of a difference")
    left.axhline(0, color="grey", lw=0.5)
    left.set_xscale("log")
    left.set_xticks(b, [str(x) for x in b])
    left.set_xlabel("training budget (epochs)")
    left.set_ylabel("validation accuracy")
    left.set_title("recipe effect vs seed noise (median, min-max over architectures)")
    left.legend(fontsize=8)
    for key, label in (
        ("tau_archs_vs_longest", "architectures, default recipe"),
        ("tau_cells_vs_longest", "all (architecture, recipe) cells"),
        ("tau_seed_vs_seed", "seed vs seed (ceiling)"),
    ):
        right.plot(b, [r.get(key) for r in rows], "o-", label=label)
    right.set_xscale("log")
    right.set_xticks(b, [str(x) for x in b])
    right.set_ylim(-1, 1)
    right.set_xlabel("training budget (epochs)")
    right.set_ylabel("Kendall tau vs the longest budget")
    right.set_title("does a short budget rank like the longest?")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(
    runs: Path,
    archs,
    recipes,
    budgets,
    seeds: int,
    stem: str,
    settings: dict,
    outside: tuple[str, ...] = (),
) -> None:
    cells = load(runs, archs, recipes, budgets, seeds)
    if not cells:
        print("no stored jobs yet")
        return
    any_job = next(runs.glob("*.json"))
    val_images = json.loads(any_job.read_text())["val_images"]
    rows, per_recipe = summarise(cells, archs, recipes, budgets, val_images, outside)
    statement = verdict(rows)
    print(statement)
    _common.finish(stem, rows, settings | {"verdict": statement})
    table = _common.print_table(per_recipe, list(per_recipe[0])) if per_recipe else ""
    md = _common.RESULTS / f"{stem}.md"
    md.write_text(
        f"{statement}\n\n{_common.print_table(rows, list(rows[0]))}\n\n"
        f"Gain of each recipe over the default (mean over architectures):\n\n{table}\n"
    )
    plot(rows, _common.RESULTS / f"{stem}.png")
