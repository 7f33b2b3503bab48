"""The mixed-space GP surrogate: the same posterior as Optuna's GP model (so the private
``optuna._gp`` it fits with is pinned here), a categorical kernel that beats one-hot features on
categorical problems, and the sampler's pure-function-of-the-storage rule."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from scipy.stats import spearmanr

from jointnas.samplers.coarse import CoarseSampler
from jointnas.samplers.gp import MixedGP, spread_rows
from jointnas.samplers.surrogate import GaussianProcess
from jointnas.spaces.base import DistributionSpace
from jointnas.spaces.encoding import Encoder

optuna.logging.set_verbosity(optuna.logging.ERROR)

MIXED = {
    "a": FloatDistribution(0.0, 1.0),
    "lr": FloatDistribution(1e-4, 1.0, log=True),
    "n": IntDistribution(1, 9),
    "op": CategoricalDistribution(["conv", "pool", "skip", "zero"]),
    "act": CategoricalDistribution(["relu", "swish"]),
}


def _rows(enc: Encoder, n: int, seed: int) -> np.ndarray:
    return enc.encode(enc.from_unit(np.random.default_rng(seed).random((n, len(enc.names)))))


def _value(enc: Encoder, X: np.ndarray) -> np.ndarray:
    cols = enc.columns(X)
    op_gain = np.array([1.0, 0.2, 0.6, -1.0])[cols["op"]]
    return op_gain - (cols["a"] - 0.3) ** 2 - 0.1 * np.abs(np.log10(cols["lr"]) + 2) + cols["act"]


def test_posterior_is_optunas_gp_posterior() -> None:
    """The fast posterior (one matrix product on scaled encoded rows) equals Optuna's
    ``GPRegressor.posterior`` on its one-column-per-parameter features, Hamming included."""
    enc = Encoder(MIXED)
    X, Q = _rows(enc, 40, 0), _rows(enc, 25, 1)
    y = _value(enc, X)
    y = (y - y.mean()) / y.std()
    gp = MixedGP(encoder=enc).fit(X, y)
    assert gp.gpr is not None
    mean, var = gp.gpr.posterior(torch.from_numpy(gp.features(Q)))
    ours_mean, ours_std = gp.mean_std(Q)
    np.testing.assert_allclose(ours_mean, mean.numpy(), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours_std**2, var.numpy(), rtol=1e-6, atol=1e-8)


def test_categorical_kernel_beats_one_hot_features_on_a_categorical_problem() -> None:
    """Six categorical operations, 30 training points: the Hamming kernel with one length scale
    per parameter ranks unseen candidates better than a GP on one-hot columns."""
    space = {f"op{i}": CategoricalDistribution(["a", "b", "c", "d", "e"]) for i in range(6)}
    enc = Encoder(space)
    gains = (
        np.random.default_rng(3).normal(size=(6, 5)) * np.array([3, 2, 1, 0.3, 0.1, 0.0])[:, None]
    )

    def f(X: np.ndarray) -> np.ndarray:
        cols = enc.columns(X)
        return sum(gains[i][cols[f"op{i}"]] for i in range(6))

    X, Q = _rows(enc, 30, 0), _rows(enc, 300, 1)
    y = f(X)
    y = (y - y.mean()) / y.std()
    hamming = spearmanr(MixedGP(encoder=enc).fit(X, y).predict(Q), f(Q))[0]
    one_hot = spearmanr(GaussianProcess(seed=0).fit(X, y).predict(Q), f(Q))[0]
    assert hamming > 0.8
    assert hamming > one_hot + 0.05, (hamming, one_hot)


def test_conditioning_keeps_the_fitted_kernel_and_sees_new_rows() -> None:
    enc = Encoder(MIXED)
    X = _rows(enc, 30, 0)
    y = _value(enc, X)
    gp = MixedGP(encoder=enc).fit(X[:20], y[:20])
    scales = gp._scale.copy()
    before = gp.mean_std(X[20:])[1]
    gp.condition(X, y)
    np.testing.assert_array_equal(gp._scale, scales)
    after = gp.mean_std(X[20:])[1]
    assert np.all(after < before)  # the new rows are now observed: less uncertainty there


def test_fit_is_a_function_of_its_rows_only() -> None:
    """No warm start from an earlier fit: two workers (or a resumed study) fit the same GP."""
    enc = Encoder(MIXED)
    X = _rows(enc, 40, 0)
    y = _value(enc, X)
    warm = MixedGP(encoder=enc).fit(X[:15], y[:15]).fit(X, y)
    cold = MixedGP(encoder=enc).fit(X, y)
    np.testing.assert_array_equal(warm.predict(X), cold.predict(X))


def test_spread_rows_keeps_the_best_half_and_an_even_spread() -> None:
    y = np.arange(100.0)
    rows = spread_rows(y, 10)
    assert len(rows) == 10 and list(rows) == sorted(rows)
    assert set(range(95, 100)) <= set(rows)
    assert list(spread_rows(y[:7], 10)) == list(range(7))


@pytest.mark.parametrize("constraint", [None, "python"])
def test_gp_sampler_is_feasible_seeded_and_finds_the_categorical_optimum(constraint) -> None:
    limit = (lambda p: [p["a"] + p["n"] / 10 - 1.0]) if constraint else None

    def objective(trial: optuna.Trial) -> float:
        enc = Encoder(MIXED)
        return float(_value(enc, enc.encode([DistributionSpace(MIXED).suggest(trial)]))[0])

    def run(seed: int) -> optuna.Study:
        sampler = CoarseSampler(search_space=MIXED, surrogate="gp", constraint=limit, seed=seed)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(objective, n_trials=25)
        return study

    study = run(0)
    assert [t.params for t in study.trials] == [t.params for t in run(0).trials]
    if limit is not None:
        assert all(limit(t.params)[0] <= 0 for t in study.trials)
    assert study.best_params["op"] == "conv" and study.best_params["act"] == "swish"
