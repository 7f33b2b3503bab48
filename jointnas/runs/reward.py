"""MnasNet's reward: accuracy traded against cost as a *soft* constraint, beside the hard limits.

MnasNet (Tan et al., 2019, eq. 2) searched for the architecture m maximising

    ACC(m) * (COST(m) / T) ** w,   w = alpha if COST(m) <= T else beta

with T the target cost; EfficientNet-B0 was searched with this reward, COST = FLOPs, T = 400M
and alpha = beta = -0.07 (the soft variant: a model twice as costly must be ~5% more accurate
to score the same). alpha = 0, beta = -1 is MnasNet's "hard-ish" variant: no bonus below the
target, a steep penalty above it. Here COST is the candidate's analytic MFLOPs (multiply-adds).

With a ``Reward``, the objective returns the reward as the trial's value (so the samplers rank by
it) and records the evaluator's accuracy beside it; predictors keep learning the accuracy, and
the fine search scores a row by predicted accuracy times the exact factor of its own MFLOPs
(``RewardScorer``), so a predictor stays an accuracy predictor, reusable for any target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from jointnas.spaces.base import Space

#: MnasNet's and EfficientNet's exponent for the soft trade-off
MNASNET_EXPONENT = -0.07


@dataclass(frozen=True, kw_only=True)
class Reward:
    """``accuracy * (mflops / target_mflops) ** w``, ``w = alpha`` at or below the target,
    ``beta`` above it (both <= 0: a costlier model never scores higher at equal accuracy)."""

    target_mflops: float
    alpha: float = MNASNET_EXPONENT
    beta: float = MNASNET_EXPONENT

    def __post_init__(self) -> None:
        t = self.target_mflops
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < math.inf:
            raise ValueError(f"--target-mflops must be a finite number > 0, got {t!r}")
        for name in ("alpha", "beta"):
            w = getattr(self, name)
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not -math.inf < w <= 0:
                raise ValueError(
                    f"--reward-exponent ({name}) must be a finite number <= 0 (a costlier "
                    f"model must not score higher), got {w!r}"
                )

    def factor(self, mflops: Any) -> Any:
        """The cost factor ``(mflops / T) ** w`` of each value (a float, or an array)."""
        m = np.asarray(mflops, dtype=float)
        if np.any(~(m > 0)):
            raise ValueError("the reward needs MFLOPs > 0 for every candidate")
        ratio = m / self.target_mflops
        out = ratio ** np.where(ratio <= 1.0, self.alpha, self.beta)
        return float(out) if out.ndim == 0 else out

    def __call__(self, accuracy: Any, mflops: Any) -> Any:
        """The reward of candidates with these accuracies and MFLOPs."""
        if np.ndim(accuracy) == 0 and np.ndim(mflops) == 0:
            return float(accuracy) * self.factor(mflops)
        return np.asarray(accuracy, dtype=float) * self.factor(mflops)

    def record(self) -> dict[str, Any]:
        """JSON-able settings for the study attrs: what a study's values mean."""
        return {
            "kind": "mnasnet",
            "target_mflops": float(self.target_mflops),
            "alpha": float(self.alpha),
            "beta": float(self.beta),
            "value": "accuracy * (mflops / target_mflops) ** w, w = alpha if mflops <= "
            "target_mflops else beta",
        }

    def describe(self) -> str:
        """One line for people: the formula with the numbers in it."""
        w = f"{self.alpha:g}" if self.alpha == self.beta else f"{self.alpha:g} / {self.beta:g}"
        return f"reward = accuracy * (MFLOPs / {self.target_mflops:g}) ^ {w}"


class RewardScorer:
    """A fitted accuracy predictor seen as a reward predictor: each encoded row's predicted
    accuracy times the exact reward factor of the row's analytic MFLOPs (the space's
    vectorised cost). What the fine search ranks by when the run optimises a reward."""

    def __init__(self, predictor: Any, reward: Reward) -> None:
        self.predictor = predictor
        self.reward = reward
        self.space: Space = predictor.space
        self.task = predictor.task

    def mflops(self, X: np.ndarray) -> np.ndarray:
        c = self.space.cost_batch(
            np.asarray(X, dtype=float),
            num_classes=self.task.num_classes,
            in_channels=self.task.in_channels,
        )
        return np.asarray(c.flops, dtype=float) / 1e6

    def predict(self, X: np.ndarray) -> np.ndarray:
        accuracy = np.asarray(self.predictor.predict(X), dtype=float).reshape(-1)
        return self.reward(accuracy, self.mflops(X))
