"""The plain model-based sampler that issue 13 measured CoarseSampler against.

Plain XGBoost (squared error, 100 trees of depth 4, default learning rate) on the one-hot /
[0, 1] features, fitted on every completed trial, argmax of its prediction over a fresh
4,096-point feasible scrambled-Sobol pool, 10% random pool members, 10 quasi-random startup
trials. Kept as the yardstick: whatever CoarseSampler does on top must beat this.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import optuna
import xgboost as xgb
from scipy.stats import qmc

from jointnas.spaces.encoding import Encoder


class ReferenceXGBSampler(optuna.samplers.BaseSampler):
    def __init__(
        self,
        *,
        search_space: Mapping[str, Any],
        constraint: Callable[[dict[str, Any]], list[float]] | None = None,
        seed: int = 0,
        n_startup: int = 10,
        pool: int = 4096,
    ) -> None:
        self.enc, self.constraint, self.seed = Encoder(search_space), constraint, seed
        self.n_startup, self.pool = n_startup, pool
        self.rand = optuna.samplers.RandomSampler(seed=seed)

    def infer_relative_search_space(self, study, trial):
        return dict(self.enc.distributions)

    def _feasible(self, rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
        sobol = qmc.Sobol(len(self.enc.names), scramble=True, rng=rng)
        rows = self.enc.from_unit(sobol.random(n))
        return [r for r in rows if self.constraint is None or max(self.constraint(r)) <= 0]

    def sample_relative(self, study, trial, search_space):
        rng = np.random.default_rng([self.seed, trial.number])
        done = study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])
        pool = self._feasible(rng, self.pool if len(done) >= self.n_startup else 256)
        if len(done) < self.n_startup or rng.random() < 0.1:
            return pool[int(rng.integers(len(pool)))]
        sign = -1.0 if study.direction == optuna.study.StudyDirection.MINIMIZE else 1.0
        X = self.enc.encode([t.params for t in done])
        y = sign * np.array([t.value for t in done])
        params = {"max_depth": 4, "objective": "reg:squarederror", "seed": self.seed, "nthread": 1}
        model = xgb.train(params, xgb.DMatrix(X, label=y), num_boost_round=100)
        return pool[int(np.argmax(model.inplace_predict(self.enc.encode(pool))))]

    def sample_independent(self, study, trial, name, dist):
        return self.rand.sample_independent(study, trial, name, dist)
