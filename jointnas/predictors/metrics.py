"""How well a predictor ranks: what a search needs is order, and the top, not small errors."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def precision_at_k(y_true: np.ndarray, y_pred: np.ndarray, *, frac: float = 0.1) -> float:
    """Share of the true top ``frac`` that is also in the predicted top ``frac`` (at least 1)."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    k = max(1, math.ceil(frac * len(y_true)))
    top_true = set(np.argsort(-y_true, kind="stable")[:k].tolist())
    top_pred = set(np.argsort(-y_pred, kind="stable")[:k].tolist())
    return len(top_true & top_pred) / k


def ranking_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Kendall tau, Spearman rho, precision@10% and MAE of ``y_pred`` against ``y_true``."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or len(y_true) < 2:
        raise ValueError(
            f"need two 1-d arrays of equal length >= 2, got {y_true.shape}, {y_pred.shape}"
        )
    if np.ptp(y_true) == 0 or np.ptp(y_pred) == 0:
        tau = rho = 0.0  # a constant ranks nothing (scipy would warn and return NaN)
    else:
        tau = float(stats.kendalltau(y_true, y_pred).statistic)
        rho = float(stats.spearmanr(y_true, y_pred).statistic)
    return {
        "kendall_tau": tau,
        "spearman": rho,
        "precision_at_10": precision_at_k(y_true, y_pred, frac=0.1),
        "mae": float(np.mean(np.abs(y_true - y_pred))),
        "n": len(y_true),
    }
