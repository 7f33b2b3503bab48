"""Predictors: one API, exact save/load round-trips, clear refusals, and they really learn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jointnas.errors import ConfigError
from jointnas.predictors import (
    NeuralPredictor,
    PredictorError,
    XGBoostPredictor,
    load_predictor,
    precision_at_k,
    ranking_metrics,
    read_table,
)
from jointnas.predictors.neural import proxy_targets
from jointnas.spaces.fbnetv3 import FBNetV3Space
from jointnas.spaces.recipe_axes import before_augment_axis

SPACE = FBNetV3Space()
FAST_MLP = dict(proxy_samples=2000, proxy_epochs=5, frozen_epochs=20, full_epochs=20)


def _make(kind: str, **kw):
    if kind == "mlp":
        return NeuralPredictor(space=SPACE, seed=0, **{**FAST_MLP, **kw})
    return XGBoostPredictor(space=SPACE, seed=0, n_estimators=50, **kw)


@pytest.fixture(scope="module")
def synthetic():
    """Random candidates with an accuracy that depends on size and recipe, plus noise."""
    rng = np.random.default_rng(3)
    params = [SPACE.sample(rng) for _ in range(120)]
    logf = proxy_targets(SPACE, SPACE.encode(params), num_classes=10, in_channels=1)[:, 0]
    lr = np.log([p["lr"] for p in params])
    y = 0.8 + 0.03 * (logf - logf.mean()) - 0.02 * (lr - lr.mean()) ** 2
    return params, y + rng.normal(0, 0.003, len(y))


@pytest.mark.parametrize("kind", ["mlp", "xgboost"])
def test_fit_predict_save_load_round_trip(tmp_path, synthetic, kind):
    params, y = synthetic
    model = _make(kind).fit(params[:80], y[:80], source={"study": "synthetic"})
    pred = model.predict(params[80:])
    assert pred.shape == (40,) and np.all(np.isfinite(pred))
    assert ranking_metrics(y[80:], pred)["kendall_tau"] > 0.3  # learns the synthetic signal
    np.testing.assert_array_equal(model.predict_encoded(SPACE.encode(params[80:])), pred)

    model.save(tmp_path / kind)
    loaded = load_predictor(tmp_path / kind)
    np.testing.assert_array_equal(loaded.predict(params[80:]), pred)
    meta = json.loads((tmp_path / kind / "metadata.json").read_text())
    assert meta["space"] == {"name": "fbnetv3-small", "fingerprint": SPACE.fingerprint()}
    assert meta["space_record"] == {
        "name": "fbnetv3-small",
        "options": {},
        "module": "jointnas.spaces.fbnetv3",
        "fingerprint": SPACE.fingerprint(),
    }
    assert meta["feature_names"] == SPACE.feature_names
    assert meta["training"]["n"] == 80 and meta["training"]["source"] == {"study": "synthetic"}
    assert "torch" in meta["versions"] and meta["kind"] == kind

    again = _make(kind).fit(params[:80], y[:80])  # same seed, same data: same predictions
    np.testing.assert_array_equal(again.predict(params[80:]), pred)


@pytest.mark.parametrize("kind", ["mlp", "xgboost"])
def test_load_refuses_other_space_and_corrupt_files(tmp_path, synthetic, kind):
    params, y = synthetic
    path = _make(kind).fit(params[:40], y[:40]).save(tmp_path / "p")

    with pytest.raises(PredictorError, match="fitted on space 'fbnetv3-small'"):
        load_predictor(path, space=FBNetV3Space(preset="imagenet"))

    weights = next(f for f in path.iterdir() if f.name != "metadata.json")
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(PredictorError, match="cannot load weights") as err:
        load_predictor(path)
    assert "\n" not in str(err.value)

    (path / "metadata.json").write_text('{"format": "jointnas-predictor", "format_ver')
    with pytest.raises(PredictorError, match="not valid JSON"):
        load_predictor(path)
    (path / "metadata.json").write_text(json.dumps({"model": "something else"}))
    with pytest.raises(PredictorError, match="not jointnas predictor metadata"):
        load_predictor(path)
    with pytest.raises(PredictorError, match="no predictor directory"):
        load_predictor(tmp_path / "missing")
    with pytest.raises(PredictorError, match=r"metadata\.json is missing"):
        load_predictor(tmp_path)


def test_bad_fit_input_is_refused(synthetic):
    params, y = synthetic
    with pytest.raises(ValueError, match="NaN"):
        _make("xgboost").fit(params[:10], [*y[:9], float("nan")])
    with pytest.raises(ValueError, match="shape"):
        _make("xgboost").fit(params[:10], y[:9])
    with pytest.raises(ValueError, match="at least"):
        _make("xgboost").fit(params[:2], y[:2])
    with pytest.raises(ValueError, match="loss must be"):
        NeuralPredictor(space=SPACE, loss="l1")
    with pytest.raises(RuntimeError, match="not fitted"):
        _make("mlp").predict(params[:2])
    bad = dict(params[0], s1_width=12)
    with pytest.raises(ValueError, match="s1_width"):
        _make("xgboost").fit([bad, *params[1:10]], y[:10])


def test_proxy_head_learns_mflops_on_held_out_candidates():
    """Pretrained only on analytic cost (the default 10k candidates): it must rank size."""
    model = NeuralPredictor(space=SPACE, seed=0, frozen_epochs=1, full_epochs=0)
    rng = np.random.default_rng(11)
    model.fit([SPACE.sample(rng) for _ in range(8)], rng.random(8))
    assert model.proxy_trained
    X = SPACE.encode([SPACE.sample(rng) for _ in range(500)])
    true = proxy_targets(SPACE, X, num_classes=10, in_channels=1)
    pred = model.predict_proxy(X)
    assert ranking_metrics(true[:, 0], pred[:, 0])["kendall_tau"] > 0.9
    assert ranking_metrics(true[:, 1], pred[:, 1])["kendall_tau"] > 0.9


def test_metrics_on_known_rankings():
    y = np.arange(20.0)
    assert ranking_metrics(y, y)["kendall_tau"] == pytest.approx(1.0)
    assert ranking_metrics(y, -y)["spearman"] == pytest.approx(-1.0)
    assert precision_at_k(y, y, frac=0.1) == 1.0
    assert precision_at_k(y, -y, frac=0.1) == 0.0
    swapped = y.copy()
    swapped[[19, 0]] = swapped[[0, 19]]  # best predicted worst: half of the top 2 is kept
    assert precision_at_k(y, swapped, frac=0.1) == 0.5
    assert ranking_metrics(y, np.full(20, 0.5))["kendall_tau"] == 0.0  # constant: no order


TABLE = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "table.csv"


@pytest.mark.skipif(not TABLE.exists(), reason="recorded table not present")
@pytest.mark.parametrize("kind", ["mlp", "xgboost"])
def test_predictors_beat_mflops_alone_on_the_recorded_table(kind):
    """On real trainings: ranking held-out candidates by the predictor beats ranking by size."""
    with before_augment_axis():  # the table was recorded before the augment axis
        space = FBNetV3Space()
    with pytest.raises(ConfigError, match="recorded before 'fbnetv3-small' searched 'augment'"):
        read_table(TABLE, SPACE)
    params, frame = read_table(TABLE, space)
    y = frame["acc"].to_numpy()
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[:200], order[200:]
    model = (NeuralPredictor if kind == "mlp" else XGBoostPredictor)(space=space, seed=0)
    model.fit([params[i] for i in train], y[train])
    tau = ranking_metrics(y[test], model.predict([params[i] for i in test]))["kendall_tau"]
    baseline = ranking_metrics(y[test], frame["mflops"].to_numpy()[test])["kendall_tau"]
    assert tau > baseline + 0.1, (tau, baseline)


def test_neural_predictor_on_a_plain_optuna_space_skips_the_cost_proxy():
    """A DistributionSpace has no network: no analytic cost, so no proxy pretraining, and the
    predictor still fits (the row-by-row cost fallback must pass that on, not fail)."""
    from optuna.distributions import FloatDistribution

    from jointnas.spaces.base import DistributionSpace

    space = DistributionSpace({"x": FloatDistribution(0, 1), "y": FloatDistribution(0, 1)})
    rng = np.random.default_rng(0)
    params = [space.sample(rng) for _ in range(30)]
    model = NeuralPredictor(space=space, seed=0).fit(params, np.array([p["x"] for p in params]))
    assert model.proxy_trained is False
    assert np.all(np.isfinite(model.predict(params)))
