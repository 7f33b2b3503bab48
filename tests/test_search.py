"""The vectorised fine search: feasible, distinct, deterministic, and it climbs."""

from __future__ import annotations

import numpy as np
import pytest

from jointnas.constraints import Limits, cost_feasibility, draw_feasible, uniform_rows
from jointnas.errors import InfeasibleConstraintError
from jointnas.runs.search import fine_search
from jointnas.spaces.fbnetv3 import FBNetV3Space
from jointnas.spaces.nets.cost import cost

SPACE = FBNetV3Space()
FEASIBLE = cost_feasibility(SPACE, Limits(mflops=1.0), num_classes=10, in_channels=1)


class Synthetic:
    """A known score on encoded rows: prefers wide last stages and lr near its middle."""

    def __init__(self) -> None:
        names = SPACE.feature_names
        self.w = np.array([1.0 if n in ("s4_width", "s3_width") else 0.0 for n in names])
        self.lr = names.index("lr")
        self.calls = 0

    def predict(self, X: np.ndarray) -> np.ndarray:
        self.calls += 1
        return X @ self.w - 4 * (X[:, self.lr] - 0.5) ** 2


def test_encoder_vectorised_views_agree_with_the_row_path():
    enc = SPACE.encoder
    U = np.random.default_rng(0).random((300, len(enc.names)))
    X = enc.encode_columns(enc.unit_columns(U))
    np.testing.assert_array_equal(X, SPACE.encode(enc.from_unit(U)))
    noisy = X + np.random.default_rng(1).normal(0, 0.2, X.shape)
    snapped = enc.snap(noisy)
    np.testing.assert_array_equal(enc.snap(snapped), snapped)  # idempotent: on the grid
    np.testing.assert_array_equal(SPACE.encode(SPACE.decode_matrix(snapped)), snapped)


def test_fine_search_is_feasible_distinct_deterministic_and_climbs():
    predictor = Synthetic()
    init = draw_feasible(
        uniform_rows(SPACE.encoder, np.random.default_rng(5)), 10, FEASIBLE, max_draws=100_000
    )
    run = dict(feasible=FEASIBLE, init=init, population=32, children=512, generations=8, seed=3)
    result = fine_search(SPACE, predictor, **run)
    assert predictor.calls == 9  # one scoring call per generation (+ the first population)
    assert FEASIBLE(result.X).all() and len(np.unique(result.X, axis=0)) == 32
    for params in result.params(SPACE)[:5]:  # the analytic scalar cost agrees
        assert cost(SPACE.decode(params).arch, num_classes=10, in_channels=1).mflops <= 1.0
    bests = [h["best"] for h in result.history]
    assert bests == sorted(bests) and bests[-1] > predictor.predict(init).max()
    np.testing.assert_array_equal(result.predicted, predictor.predict(result.X))
    assert result.scored > 32 and result.rate > 0
    assert all(0.01 <= h["sigma"] <= 0.5 for h in result.history)
    again = fine_search(SPACE, Synthetic(), **run)
    np.testing.assert_array_equal(again.X, result.X)
    other = fine_search(SPACE, Synthetic(), **{**run, "seed": 4})
    assert not np.array_equal(other.X, result.X)


def test_fine_search_refuses_bad_settings_and_impossible_limits():
    with pytest.raises(ValueError, match="population"):
        fine_search(SPACE, Synthetic(), feasible=FEASIBLE, population=1)
    never = cost_feasibility(SPACE, Limits(mflops=0.01), num_classes=10, in_channels=1)
    with pytest.raises(InfeasibleConstraintError, match="satisfied the constraint"):
        fine_search(SPACE, Synthetic(), feasible=never, generations=1)
