"""XGBoost accuracy predictor on the same encoding as the neural one.

Pseudo-Huber loss on the standardised target: with raw accuracies in [0, 1] the default
``huber_slope=1`` makes the loss nearly quadratic on tiny residuals and the trees underfit
(DESIGN.md); standardising puts residuals on the slope's scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from jointnas.predictors.base import Predictor, PredictorError
from jointnas.spaces.base import Space

MODEL = "model.json"


class XGBoostPredictor(Predictor):
    """Gradient-boosted trees; deterministic for a seed (``hist`` on CPU, same trees for any
    ``n_jobs``). One thread by default: a study's table (hundreds to a few thousand rows) fits in
    about a second on one core, while extra OpenMP threads busy-wait against the training
    processes; next to 2 one-thread training jobs on 2 cores, a 300-row fit took 55 s with 2
    threads (benchmarks/bench_sampler_overhead.py found it)."""

    kind = "xgboost"

    def __init__(
        self,
        *,
        space: Space,
        seed: int = 0,
        task=None,
        n_estimators: int = 300,
        max_depth: int = 3,
        learning_rate: float = 0.05,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        min_child_weight: float = 1.0,
        huber_slope: float = 1.0,
        objective: str = "reg:pseudohubererror",
        n_jobs: int = 1,
    ) -> None:
        super().__init__(space=space, seed=seed, task=task)
        if n_estimators < 1 or max_depth < 1:
            raise ValueError("n_estimators and max_depth must be >= 1")
        if not 0 < subsample <= 1 or not 0 < colsample_bytree <= 1:
            raise ValueError("subsample and colsample_bytree must be in (0, 1]")
        self.n_estimators, self.max_depth, self.learning_rate = (
            n_estimators,
            max_depth,
            learning_rate,
        )
        self.subsample, self.colsample_bytree = subsample, colsample_bytree
        self.min_child_weight, self.huber_slope, self.objective = (
            min_child_weight,
            huber_slope,
            objective,
        )
        self.n_jobs = n_jobs
        self.booster: xgb.Booster | None = None

    def hyperparameters(self) -> dict[str, Any]:
        names = [
            "n_estimators",
            "max_depth",
            "learning_rate",
            "subsample",
            "colsample_bytree",
            "min_child_weight",
            "huber_slope",
            "objective",
            "n_jobs",
        ]
        return {n: getattr(self, n) for n in names}

    def _params(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "huber_slope": self.huber_slope,
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "tree_method": "hist",
            "seed": self.seed,
            "nthread": self.n_jobs,
            "base_score": 0.0,
        }

    def _fit(self, X: np.ndarray, z: np.ndarray) -> None:
        dtrain = xgb.DMatrix(X, label=z, feature_names=None)
        self.booster = xgb.train(self._params(), dtrain, num_boost_round=self.n_estimators)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        assert self.booster is not None
        return self.booster.inplace_predict(X)

    def _save(self, path: Path) -> None:
        assert self.booster is not None
        self.booster.save_model(str(path / MODEL))

    def _load(self, path: Path) -> None:
        file = path / MODEL
        if not file.is_file():
            raise PredictorError(f"{str(path)!r} has no {MODEL}")
        booster = xgb.Booster()
        booster.load_model(str(file))
        booster.set_param({"nthread": self.n_jobs})
        self.booster = booster
