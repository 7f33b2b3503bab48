"""The coarse search's surrogate: an ensemble that gives a mean *and* a spread.

A single accuracy predictor says where it believes the best candidate is, never how sure it is,
so a search driven by it alone keeps sampling next to its first good guess. Expected improvement
and Thompson sampling need a spread; an ensemble gives one from any regressor: ``size`` members,
each fitted with its own seed on its own bootstrap resample of the trials (bagging, as SMAC's
random forest and BANANAS's ensemble of 5). Where members disagree the search is unsure.

Found with a probe on COCO's bbob-mixint (6 functions in 5-D, 3 seeds, 60 evaluations; the
suite itself is ``benchmarks/bench_sampler_suites.py``), what the default member must be:
plain squared-error XGBoost, 50 trees of depth 4 at learning rate 0.3. The accuracy
predictor's own settings (pseudo-Huber loss, 300 trees at 0.05, row and column subsampling)
suit a predictor read once on a large table, but as a sampler's surrogate on 10-100 trials they
underfit: the pseudo-Huber Hessian is tiny on large standardised residuals, so the leaves of the
few trials that matter most (far better or worse than the rest) are shrunk towards zero.

Targets reach the members rank-transformed (normal scores of the ranks, HEBO's output warping):
objectives with a heavy tail (a COCO function, an accuracy near a wall) otherwise let a few
extreme trials decide every split.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import xgboost as xgb
from scipy.special import ndtr, ndtri
from scipy.stats import rankdata

from jointnas.samplers.gp import spread_rows
from jointnas.samplers.support import predict_rows

TARGETS = ("rank", "standard")


class Regressor(Protocol):
    def fit(self, X: np.ndarray, y: np.ndarray) -> Any: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...


class TreeRegressor:
    """Plain XGBoost on encoded rows: the default ensemble member (see the module docstring).
    One thread: a sampler runs next to training processes (OpenMP threads busy-wait)."""

    def __init__(
        self, *, seed: int = 0, n_estimators: int = 50, max_depth: int = 4, eta: float = 0.3
    ) -> None:
        self.params = {
            "objective": "reg:squarederror",
            "max_depth": max_depth,
            "eta": eta,
            "tree_method": "hist",
            "seed": seed,
            "nthread": 1,
        }
        self.n_estimators = n_estimators
        self.booster: xgb.Booster | None = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> TreeRegressor:
        self.booster = xgb.train(
            self.params, xgb.DMatrix(X, label=y), num_boost_round=self.n_estimators
        )
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        assert self.booster is not None, "fit first"
        return self.booster.inplace_predict(X)


def untransform_target(z: float, y: np.ndarray, target: str) -> float:
    """The objective value a transformed target ``z`` stands for, given the targets ``y`` it
    was computed from: the inverse z-score, or the value at that quantile."""
    if target == "standard":
        return float(z * (y.std() or 1.0) + y.mean())
    return float(np.quantile(y, float(np.clip(ndtr(z), 0.0, 1.0))))


def transform_target(y: np.ndarray, kind: str) -> np.ndarray:
    """Higher-is-better targets on a scale a regressor fits well: ``rank`` maps them to normal
    scores of their ranks (ties share a rank), ``standard`` to zero mean and unit variance."""
    y = np.asarray(y, dtype=float)
    if kind == "rank":
        return ndtri((rankdata(y) - 0.5) / len(y))
    if kind == "standard":
        return (y - y.mean()) / (y.std() or 1.0)
    raise ValueError(f"target must be one of {TARGETS}, got {kind!r}")


class Ensemble:
    """``size`` regressors from ``make(seed)``, each on a bootstrap resample when ``bootstrap``:
    the members' mean is the estimate, their spread the uncertainty the acquisition rewards."""

    def __init__(
        self,
        *,
        make: Callable[[int], Regressor],
        size: int = 5,
        seed: int = 0,
        bootstrap: bool = True,
    ) -> None:
        if size < 1:
            raise ValueError(f"ensemble size must be >= 1, got {size}")
        self.make, self.size, self.seed, self.bootstrap = make, size, seed, bootstrap
        self.models: list[Regressor] = []

    def fit(self, X: np.ndarray, y: np.ndarray) -> Ensemble:
        rng = np.random.default_rng([self.seed, len(y)])
        models = []
        for _ in range(self.size):
            rows = rng.integers(len(y), size=len(y)) if self.bootstrap else np.arange(len(y))
            model = self.make(int(rng.integers(2**31)))
            model.fit(X[rows], y[rows])
            models.append(model)
        self.models = models
        return self

    def members(self, X: np.ndarray) -> np.ndarray:
        if not self.models:
            raise RuntimeError("fit the ensemble first")
        return np.stack([predict_rows(model, X) for model in self.models])

    def mean_std(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = self.members(X)
        return m.mean(axis=0), m.std(axis=0)

    def draw(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Thompson sampling: one member, drawn at random."""
        return predict_rows(self.models[int(rng.integers(len(self.models)))], X)


class Single:
    """A user's one regressor as a surrogate: a mean and no spread."""

    def __init__(self, model: Regressor) -> None:
        self.model = model

    def fit(self, X: np.ndarray, y: np.ndarray) -> Single:
        self.model.fit(X, y)
        return self

    def mean_std(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = predict_rows(self.model, X)
        return m, np.zeros_like(m)

    def draw(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return predict_rows(self.model, X)


class GaussianProcess:
    """scikit-learn's GP (``surrogate="gp-onehot"``): Matern 5/2 with one length scale per
    *feature* (ARD) plus noise, on the [0, 1] / one-hot features, fitted by maximum likelihood
    without priors. Kept as the measured alternative to ``gp.MixedGP``: it ties that model on
    continuous knobs and loses on categorical ones (a category is one-hot columns here).

    ``fit`` optimises the kernel's hyperparameters; ``condition`` puts new rows under the fitted
    kernel (one Cholesky factorisation), so the sampler refits hyperparameters on its schedule
    and still conditions on every trial. Both use at most ``max_points`` rows (the best half
    and an even spread of the rest) to keep the cubic cost bounded on long studies.
    """

    def __init__(self, *, seed: int = 0, max_points: int = 300) -> None:
        self.seed, self.max_points = seed, max_points
        self.gp: Any = None

    def _gp(self, kernel: Any, optimise: bool) -> Any:
        from sklearn.gaussian_process import GaussianProcessRegressor

        return GaussianProcessRegressor(
            kernel=kernel,
            normalize_y=True,
            random_state=self.seed,
            n_restarts_optimizer=0,
            optimizer="fmin_l_bfgs_b" if optimise else None,
        )

    def fit(self, X: np.ndarray, y: np.ndarray) -> GaussianProcess:
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
            length_scale=np.full(X.shape[1], 0.5), length_scale_bounds=(1e-2, 1e2), nu=2.5
        ) + WhiteKernel(1e-2, (1e-6, 1e0))
        rows = spread_rows(y, self.max_points)
        gp = self._gp(kernel, optimise=True)
        with warnings.catch_warnings():  # length scales at their bounds are expected here
            warnings.simplefilter("ignore")
            gp.fit(X[rows], y[rows])
        self.gp = gp
        return self

    def condition(self, X: np.ndarray, y: np.ndarray) -> GaussianProcess:
        if self.gp is None:
            return self.fit(X, y)
        rows = spread_rows(y, self.max_points)
        gp = self._gp(self.gp.kernel_, optimise=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gp.fit(X[rows], y[rows])
        self.gp = gp
        return self

    def mean_std(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not len(X):
            return np.empty(0), np.empty(0)
        mean, std = self.gp.predict(X, return_std=True)
        return np.asarray(mean, float), np.asarray(std, float)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.mean_std(X)[0]

    def draw(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        mean, std = self.mean_std(X)
        return mean + std * rng.standard_normal(len(mean))


class Mixture:
    """Equal-weight mixture of several surrogates (``surrogate="gp+xgboost"``): the mixture's
    mean, and its standard deviation, which adds the members' disagreement to their own spread,
    so a candidate the GP and the trees judge differently counts as uncertain."""

    def __init__(self, members: list[Any]) -> None:
        self.members = members

    def fit(self, X: np.ndarray, y: np.ndarray) -> Mixture:
        for member in self.members:
            member.fit(X, y)
        return self

    def condition(self, X: np.ndarray, y: np.ndarray) -> Mixture:
        """Conditions the members that can be; the others are refitted on the rows."""
        for member in self.members:
            (member.condition if hasattr(member, "condition") else member.fit)(X, y)
        return self

    def mean_std(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        parts = [member.mean_std(X) for member in self.members]
        means = np.stack([m for m, _ in parts])
        second = np.stack([s * s + m * m for m, s in parts]).mean(axis=0)
        mean = means.mean(axis=0)
        return mean, np.sqrt(np.maximum(second - mean * mean, 0.0))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.mean_std(X)[0]

    def draw(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.members[int(rng.integers(len(self.members)))].draw(X, rng)
