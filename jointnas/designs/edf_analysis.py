"""Compare design spaces by their error EDFs (Radosavovic et al., 2020, "Designing Network
Design Spaces"; seed 003): pure functions over error samples, no training, no storage.

A design space is judged by the *distribution* of the errors of models drawn from it, not by
its single best model: the error EDF ``F(e) = (1/n) sum_i 1[e_i < e]`` of ``n`` models trained
the same way. A space whose EDF lies to the left (more mass at low error) is the better one.
Two EDFs are compared by the Kolmogorov-Smirnov statistic ``D = sup_e |F_a(e) - F_b(e)|``
(scipy's ``ks_2samp``, with its p-value), and D carries a seeded percentile-bootstrap interval
because with n ~ 100 models per space the statistic itself is noisy. The report is a CSV with
one row per trained model, the pairwise KS statistics as CSV and JSON, and a PNG with every
space's EDF on one pair of axes (legend ``name: n | min | mean`` as in the paper's figures).

Validation errors are multiples of 1 / (validation images), so ties are the rule: every
function here treats them exactly (an EDF jumps once per distinct value).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from jointnas import files

#: columns of the per-model CSV
ROW_FIELDS = ("space", "trial", "index", "error", "mflops", "params", "acts")


def _sample(errors: Sequence[float] | np.ndarray, what: str = "errors") -> np.ndarray:
    x = np.asarray(errors, dtype=float).ravel()
    if x.size == 0:
        raise ValueError(f"{what}: need at least one value")
    if not np.isfinite(x).all():
        raise ValueError(f"{what}: every value must be finite")
    return x


def edf(errors: Sequence[float] | np.ndarray, at: Sequence[float] | np.ndarray) -> np.ndarray:
    """The error EDF ``F(e) = (1/n) sum_i 1[e_i < e]`` evaluated at each ``e`` of ``at``: the
    fraction of models with error *below* e (the paper's strict inequality)."""
    x = np.sort(_sample(errors))
    return np.searchsorted(x, np.asarray(at, dtype=float), side="left") / x.size


def edf_curve(errors: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step-plot points of the EDF: 0 before the smallest error, then k/n from the k-th
    smallest error on (``where="post"``); one step per distinct value, so ties jump once."""
    x = np.sort(_sample(errors))
    values, counts = np.unique(x, return_counts=True)
    return np.r_[values[0], values], np.r_[0.0, np.cumsum(counts) / x.size]


def summary(errors: Sequence[float] | np.ndarray) -> dict[str, float | int]:
    """n, min, mean, median and max of one space's errors (the paper's legend shows n, min and
    mean: the best model and how good a typical one is)."""
    x = _sample(errors)
    return {
        "n": int(x.size),
        "min": float(x.min()),
        "mean": float(x.mean()),
        "median": float(np.median(x)),
        "max": float(x.max()),
    }


def legend_label(name: str, errors: Sequence[float] | np.ndarray, *, percent: bool = True) -> str:
    """``name: n | min | mean`` (errors in percent by default, as the paper prints them)."""
    s, scale = summary(errors), 100.0 if percent else 1.0
    digits = 1 if percent else 3
    return f"{name}: {s['n']} | {s['min'] * scale:.{digits}f} | {s['mean'] * scale:.{digits}f}"


def _ks_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """KS statistic of each row pair of ``a`` (r, n_a) and ``b`` (r, n_b), vectorised: walk the
    pooled sorted values adding +1/n_a or -1/n_b and take the largest |sum| at the end of each
    run of equal values (so ties are counted the way two ECDFs see them)."""
    values = np.concatenate([a, b], axis=1)
    weights = np.concatenate(
        [np.full(a.shape, 1.0 / a.shape[1]), np.full(b.shape, -1.0 / b.shape[1])], axis=1
    )
    order = np.argsort(values, axis=1, kind="stable")
    values = np.take_along_axis(values, order, axis=1)
    gap = np.abs(np.cumsum(np.take_along_axis(weights, order, axis=1), axis=1))
    run_end = np.ones(values.shape, dtype=bool)
    run_end[:, :-1] = values[:, 1:] != values[:, :-1]
    return np.where(run_end, gap, 0.0).max(axis=1)


def ks_statistic(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Two-sample KS statistic ``sup_e |F_a(e) - F_b(e)|`` (equal to scipy's ``ks_2samp``
    statistic; this one is what the bootstrap calls thousands of times, in batches)."""
    x, y = _sample(a, "a"), _sample(b, "b")
    return float(_ks_rows(x[None, :], y[None, :])[0])


def bootstrap_ks(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int | np.random.SeedSequence = 0,
    chunk: int = 250,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the KS statistic: resample each space's models with
    replacement (independently, keeping each n), recompute D, take the (1 - level)/2 and
    (1 + level)/2 quantiles. Seeded, so a report is reproducible.

    D is bounded below by 0 and biased upwards on resamples (two resamples of one sample
    differ), so for two nearly equal spaces the interval sits above a small D; read it as
    "how large the difference could be", and the p-value as "whether there is one"."""
    x, y = _sample(a, "a"), _sample(b, "b")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    stats_ = []
    for start in range(0, resamples, chunk):  # bounded memory for large n
        r = min(chunk, resamples - start)
        stats_.append(
            _ks_rows(
                x[rng.integers(0, x.size, size=(r, x.size))],
                y[rng.integers(0, y.size, size=(r, y.size))],
            )
        )
    d = np.concatenate(stats_)
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(d, [tail, 1.0 - tail])
    return float(lo), float(hi)


def pairwise_ks(
    errors: Mapping[str, Sequence[float] | np.ndarray],
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One row per pair of spaces (in the mapping's order): KS statistic and p-value from
    ``scipy.stats.ks_2samp``, its bootstrap interval, and which space has the lower mean error.
    Spaces without any error are left out (nothing to compare)."""
    names = [k for k, v in errors.items() if len(v)]
    rows = []
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            b = names[j]
            x, y = _sample(errors[a], a), _sample(errors[b], b)
            test = stats.ks_2samp(x, y)
            lo, hi = bootstrap_ks(
                x, y, resamples=resamples, level=level, seed=np.random.SeedSequence([seed, i, j])
            )
            rows.append(
                {
                    "a": a,
                    "b": b,
                    "n_a": int(x.size),
                    "n_b": int(y.size),
                    "ks": float(test.statistic),
                    "pvalue": float(test.pvalue),
                    "ci_low": lo,
                    "ci_high": hi,
                    "level": level,
                    "lower_mean_error": a if x.mean() <= y.mean() else b,
                }
            )
    return rows


def plot_edfs(
    errors: Mapping[str, Sequence[float] | np.ndarray],
    path: str | Path,
    *,
    title: str | None = None,
) -> Path:
    """Every space's error EDF on one pair of axes (x: error in %, y: cumulative probability),
    legend ``name: n | min | mean`` like the paper's figures; written as a PNG."""
    from jointnas.plotting import axes, save

    fig, ax = axes(figsize=(6.5, 4.5))
    for name, errs in errors.items():
        if len(errs) == 0:
            continue
        x, y = edf_curve(errs)
        ax.step(x * 100.0, y, where="post", label=legend_label(name, errs))
    ax.set(xlabel="error (%)", ylabel="cumulative prob.", ylim=(0.0, 1.02))
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    ax.legend(loc="lower right", title="space: n | min | mean (%)", fontsize=8, title_fontsize=8)
    return save(fig, path)


def _json_safe(value: Any) -> Any:
    """NaN/inf as null: JSON has no NaN, and a reader should not have to guess."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def write_report(
    rows: Sequence[Mapping[str, Any]],
    out: str | Path,
    *,
    spaces: Sequence[str] | None = None,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    title: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``edf.csv`` (``rows``: one per trained model, ``ROW_FIELDS``), ``edf_ks.csv`` and
    ``edf_summary.json`` (per-space summary, pairwise KS, ``settings``) and ``edf.png`` into
    ``out``; return the summary with the paths. ``spaces`` fixes the order (default: first
    appearance in ``rows``); a space without rows is listed with n = 0."""
    import pandas as pd

    out = Path(out)
    order = list(spaces) if spaces is not None else list(dict.fromkeys(r["space"] for r in rows))
    errors: dict[str, list[float]] = {name: [] for name in order}
    for r in rows:
        if r["space"] not in errors:
            raise ValueError(f"row of space {r['space']!r}, which is not among {order}")
        errors[r["space"]].append(float(r["error"]))
    table = pd.DataFrame([{k: r.get(k) for k in ROW_FIELDS} for r in rows], columns=ROW_FIELDS)
    pairs = pairwise_ks(errors, resamples=resamples, level=level, seed=seed)
    per_space = {k: summary(v) if v else {"n": 0} for k, v in errors.items()}
    paths = {
        "csv": files.write_text(out / "edf.csv", table.to_csv(index=False)),
        "ks_csv": files.write_text(
            out / "edf_ks.csv",
            pd.DataFrame(pairs, columns=list(pairs[0]) if pairs else ["a", "b", "ks"]).to_csv(
                index=False
            ),
        ),
    }
    result = {
        "spaces": per_space,
        "pairs": pairs,
        "bootstrap": {"resamples": resamples, "level": level, "seed": seed},
        "settings": dict(settings or {}),
    }
    paths["json"] = files.write_text(
        out / "edf_summary.json", json.dumps(_json_safe(result), indent=2, default=str)
    )
    if any(errors.values()):
        paths["png"] = plot_edfs(errors, out / "edf.png", title=title)
    return {**result, "paths": {k: str(v) for k, v in paths.items()}}
