"""The coarse search's Gaussian process on mixed spaces: Optuna's GP model, our acquisition.

Why Optuna's model: measured on a tabular NAS benchmark of six categorical cell operations,
a GP on one-hot features (scikit-learn's, ``surrogate="gp-onehot"``) scored 0.58 of the best at
25 evaluations where GPSampler scored 0.96; on smooth continuous recipe knobs the two tied. The
difference is the kernel, not the acquisition: GPSampler's GP (``optuna._gp``) puts one
column per parameter under one ARD Matern 5/2 kernel, with the Hamming distance (0 or 1) on a
categorical column, so a changed operation counts once with its own length scale, and it fits
length scales, scale and noise by maximum a posteriori with priors (a one-hot GP starts each
choice's column as a separate, equally distant dimension, with no prior, and overfits 10-50
points). This module feeds that model the sampler's encoded rows; the acquisition, the
pool and the constraint stay the sampler's, so no proposal breaks the known constraint.

``optuna._gp`` is private; the adapter uses its fitting (``fit_kernel_params``, the default
prior) and reads the fitted kernel parameters, pinned by ``tests/test_samplers_gp.py`` so an
Optuna release that moves them fails a test, not a study.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
from optuna.distributions import CategoricalDistribution

from jointnas.spaces.encoding import Encoder


def spread_rows(y: np.ndarray, max_points: int) -> np.ndarray:
    """At most ``max_points`` row indices of ``y`` (higher is better): the best half and an even
    spread of the rest, in their original order, so a long study's cubic cost stays bounded."""
    if len(y) <= max_points:
        return np.arange(len(y))
    order = np.argsort(-y, kind="stable")
    half = max_points // 2
    rest = np.sort(order[half:])
    spread = rest[np.linspace(0, len(rest) - 1, max_points - half).astype(int)]
    return np.sort(np.concatenate([order[:half], spread]))


class MixedGP:
    """ARD Matern 5/2 on the numeric parameters and Hamming on the categorical ones, one length
    scale per parameter, MAP-fitted with Optuna's priors (the GPSampler model).

    ``fit`` optimises the kernel parameters with Optuna from its defaults (never from the
    previous fit, so the model stays a pure function of the rows it is given: workers and a
    resumed study fit the same model); ``condition`` puts rows under the fitted kernel with
    one Cholesky factorisation, which is how the sampler adds every trial between refits and
    the running trials as fantasies.

    The posterior is computed here, on the encoded rows, because the sampler scores thousands
    of candidates per proposal: with each column scaled by its parameter's inverse length
    scale (a one-hot column by that over sqrt 2, since two columns differ per changed
    category), the kernel's weighted squared distance, Hamming part included, is a plain
    squared Euclidean distance, one matrix product instead of a (candidates x trials x
    parameters) tensor (0.35 s per proposal at 1,000 trials on a 24-parameter space
    with Optuna's ``posterior``). ``tests/test_samplers_gp.py`` checks both agree.

    Beyond ``max_points`` trials the GP sees the best half and a spread of the rest
    (``spread_rows``): scoring ~3,500 candidates costs a (candidates x points) kernel and a
    triangular solve, 34 ms per proposal at 300 points and 14 ms at 200 (measured, one thread).
    """

    def __init__(self, *, encoder: Encoder, max_points: int = 200) -> None:
        self.encoder, self.max_points = encoder, max_points
        self._categorical = np.array(
            [isinstance(d, CategoricalDistribution) for d in encoder.distributions.values()]
        )
        # which parameter each encoded column belongs to, and 1/2 for one-hot columns
        self._owner = np.zeros(encoder.width, dtype=np.int64)
        self._half = np.zeros(encoder.width)
        for j, name in enumerate(encoder.names):
            mask = encoder.feature_mask([name])
            self._owner[mask] = j
            self._half[mask] = 0.5 if self._categorical[j] else 1.0
        self.gpr: Any = None  # optuna._gp's GPRegressor (torch), imported when fitting
        self._scale: np.ndarray | None = None  # per encoded column
        self._train: np.ndarray | None = None  # scaled training rows
        self._chol: np.ndarray | None = None
        self._alpha: np.ndarray | None = None

    def features(self, X: np.ndarray) -> np.ndarray:
        """One column per parameter, as Optuna's GP reads them: the encoded [0, 1] value, or
        the category's index."""
        cols = self.encoder.columns(X)
        out = np.empty((len(X), len(self.encoder.names)))
        for j, name in enumerate(self.encoder.names):
            if self._categorical[j]:
                out[:, j] = cols[name]
            else:
                out[:, j] = X[:, self.encoder.feature_mask([name])][:, 0]
        return out

    @property
    def kernel_scale(self) -> float:
        assert self.gpr is not None
        return float(self.gpr.kernel_scale)

    def fit(self, X: np.ndarray, y: np.ndarray) -> MixedGP:
        from optuna._gp import gp as optuna_gp  # torch: not imported with the samplers
        from optuna._gp import prior as optuna_prior

        rows = spread_rows(y, self.max_points)
        self.gpr = optuna_gp.fit_kernel_params(
            X=self.features(X[rows]),
            Y=np.asarray(y, dtype=np.float64)[rows],
            is_categorical=self._categorical,
            log_prior=optuna_prior.default_log_prior,
            minimum_noise=optuna_prior.DEFAULT_MINIMUM_NOISE_VAR,
            deterministic_objective=False,
        )
        inverse_sq = self.gpr.inverse_squared_lengthscales.detach().numpy()
        self._scale = np.sqrt(inverse_sq[self._owner] * self._half)
        return self.condition(X, y)

    def _kernel(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """Matern 5/2 between scaled rows, times the kernel scale (in place where it can: a
        (candidates x points) matrix per operation was a third of a proposal's time)."""
        sq = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :]
        cross = A @ B.T
        cross *= 2.0
        sq -= cross
        np.maximum(sq, 0.0, out=sq)
        sq *= 5.0
        d = np.sqrt(sq, out=sq)
        out = d * d
        out /= 3.0
        out += 1.0 + d
        out *= self.kernel_scale
        np.negative(d, out=cross)
        out *= np.exp(cross, out=cross)
        return out

    def condition(self, X: np.ndarray, y: np.ndarray) -> MixedGP:
        if self.gpr is None or self._scale is None:
            return self.fit(X, y)
        rows = spread_rows(y, self.max_points)
        train = X[rows] * self._scale
        K = self._kernel(train, train)
        K[np.diag_indices_from(K)] += float(self.gpr.noise_var)
        self._chol = scipy.linalg.cholesky(K, lower=True)
        self._alpha = scipy.linalg.cho_solve((self._chol, True), np.asarray(y, float)[rows])
        self._train = train
        return self

    def mean_std(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The latent function's posterior mean and standard deviation at each encoded row."""
        mean, var, _ = self.posterior(X)
        return mean, np.sqrt(var)

    def posterior(
        self, X: np.ndarray, P: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Posterior mean and variance at each encoded row of ``X`` and, given rows ``P``, the
        posterior covariance between each row of ``X`` and each of ``P`` (``(len(X),
        len(P))``): what a joint (q-batch) acquisition needs."""
        if self._chol is None or self._train is None or self._scale is None:
            raise RuntimeError("fit the GP first")
        if not len(X):
            return np.empty(0), np.empty(0), None if P is None else np.empty((0, len(P)))
        A = np.asarray(X, float) * self._scale
        Ks = self._kernel(A, self._train)
        mean = Ks @ self._alpha
        V = scipy.linalg.solve_triangular(self._chol, Ks.T, lower=True)
        var = np.maximum(self.kernel_scale - (V * V).sum(0), 0.0)
        if P is None:
            return mean, var, None
        B = np.asarray(P, float) * self._scale
        VP = scipy.linalg.solve_triangular(self._chol, self._kernel(B, self._train).T, lower=True)
        return mean, var, self._kernel(A, B) - V.T @ VP

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.mean_std(X)[0]

    def draw(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Thompson sampling, independently per row (the marginal posterior)."""
        mean, std = self.mean_std(X)
        return mean + std * rng.standard_normal(len(mean))
