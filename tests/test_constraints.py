"""The constraint vocabulary: one mask that agrees with the scalar cost, one seeded draw, and an
import that does not pay for torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from jointnas.constraints import (
    LIMIT_KEYS,
    Band,
    DrawShortfall,
    Limits,
    draw_feasible,
    feasible_mask,
    is_feasible,
    uniform_rows,
)
from jointnas.errors import InfeasibleConstraintError
from jointnas.samplers.feasible import sample_feasible
from jointnas.spaces.registry import get_space

TASK = {"num_classes": 10, "in_channels": 1}


def _rows(space, n: int, seed: int) -> np.ndarray:
    return uniform_rows(space.encoder, np.random.default_rng(seed))(n)


def _scalar_costs(space, X: np.ndarray) -> list:
    return [space.cost(space.decode(p).arch, **TASK) for p in space.decode_matrix(X)]


@pytest.mark.parametrize("name", ["fbnetv3-small", "regnet", "shufflenet-choice"])
def test_mask_agrees_with_the_scalar_cost_of_each_candidate(name: str) -> None:
    space = get_space(name)
    X = _rows(space, 120, seed=1)
    costs = _scalar_costs(space, X)
    mflops = np.array([c.mflops for c in costs])
    params = np.array([c.params for c in costs])
    # limits at the medians, so both outcomes occur and each limit decides some rows
    for limits in (
        Limits(mflops=float(np.median(mflops)), params=int(np.median(params))),
        Limits(mflops=float(np.median(mflops)), regnet=True),
    ):
        mask = feasible_mask(X, space, TASK, limits)
        expected = np.array([is_feasible(limits.values(c)) for c in costs])
        np.testing.assert_array_equal(mask, expected)
        assert 0 < mask.sum() < len(X)
    low, high = np.quantile(mflops, [0.25, 0.75])
    in_band = feasible_mask(X, space, TASK, band=Band(float(low), float(high)))
    np.testing.assert_array_equal(in_band, (mflops >= low) & (mflops <= high))
    # no limits, no band: everything passes, without asking for a cost
    assert feasible_mask(X, space, TASK, Limits()).all()


def test_limits_matrix_names_and_refusals() -> None:
    assert LIMIT_KEYS == ("mflops", "params", "acts")
    space = get_space("fbnetv3-small")
    X = _rows(space, 7, seed=0)
    c = space.cost_batch(X, **TASK)
    limits = Limits(mflops=2.0, acts=100_000, regnet=True)
    assert limits.names() == ["mflops", "acts", "regnet_acts", "regnet_params"]
    assert limits.matrix(c).shape == (7, 4) and Limits().matrix(c).shape == (7, 0)
    np.testing.assert_allclose(limits.matrix(c)[:, 0], c.flops / 1e6 - 2.0)
    with pytest.raises(ValueError, match="--max-mflops must be > 0"):
        Limits(mflops=0)
    with pytest.raises(ValueError, match="unknown band 'latency'"):
        Band(0.0, 1.0, key="latency")


def test_draw_is_seeded_a_prefix_chunking_free_and_feasible() -> None:
    space = get_space("fbnetv3-small")
    band = Band(1.0, 2.0)

    def accept(X: np.ndarray) -> np.ndarray:
        return feasible_mask(X, space, TASK, band=band)

    def draw(n: int, seed: int = 0, first: int = 256) -> np.ndarray:
        rows = uniform_rows(space.encoder, np.random.default_rng(seed))
        return draw_feasible(rows, n, accept, max_draws=50_000, first=first)

    X = draw(40)
    assert X.shape == (40, space.encoder.width) and accept(X).all()
    np.testing.assert_array_equal(draw(40), X)  # seeded
    np.testing.assert_array_equal(draw(70)[:40], X)  # a larger n extends it
    np.testing.assert_array_equal(draw(40, first=1), X)  # rows follow the stream, not chunks
    assert not np.array_equal(draw(40, seed=1), X)


def test_draw_keeps_distinct_keys_and_returns_what_is_enough() -> None:
    space = get_space("fbnetv3-small")
    rows = uniform_rows(space.encoder, np.random.default_rng(0))

    def every(X: np.ndarray) -> np.ndarray:
        return np.ones(len(X), dtype=bool)

    def first_gene(X: np.ndarray) -> list:
        return [p[space.encoder.names[0]] for p in space.encoder.decode(X)]

    X = draw_feasible(rows, 100, every, max_draws=500, distinct=first_gene, enough=1)
    keys = first_gene(X)
    assert len(keys) == len(set(keys)) < 100  # a partial result, each key once


def test_draw_says_how_rare_its_target_is_after_max_draws() -> None:
    space = get_space("fbnetv3-small")
    rows = uniform_rows(space.encoder, np.random.default_rng(0))

    def never(X: np.ndarray) -> np.ndarray:
        return feasible_mask(X, space, TASK, band=Band(0.3, 0.3001))

    with pytest.raises(DrawShortfall) as caught:
        draw_feasible(rows, 5, never, max_draws=1000, what="the band", hint="widen it")
    short = caught.value
    assert isinstance(short, InfeasibleConstraintError)
    assert (short.drawn, short.kept, short.wanted) == (1000, short.accepted, 5)
    assert (
        str(short)
        == f"{short.accepted} of 1000 random candidates satisfied the band, 5 needed: widen it"
    )
    with pytest.raises(ValueError, match="accept returned shape"):
        draw_feasible(rows, 1, lambda X: np.ones(1, dtype=bool), max_draws=10, first=4)


def test_sample_feasible_is_the_first_feasible_point_of_its_stream() -> None:
    space = get_space("fbnetv3-small")
    enc = space.encoder

    def constraint(params: dict) -> list[float]:
        return Limits(mflops=1.0).values(space.cost(space.decode(params).arch, **TASK))

    got = sample_feasible(enc, constraint, np.random.default_rng(3))
    stream = enc.from_unit(np.random.default_rng(3).random((2000, len(enc.names))))
    assert got == next(p for p in stream if is_feasible(constraint(p)))
    with pytest.raises(InfeasibleConstraintError, match="0 of 300 random candidates"):
        sample_feasible(enc, lambda p: [1.0], np.random.default_rng(0), max_tries=300)


def test_constraints_search_and_reuse_import_without_torch() -> None:
    code = (
        "import sys; import jointnas.constraints, jointnas.runs.search, jointnas.tools.reuse; "
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))[:1])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    # on failure, ``python -X importtime -c "import jointnas.runs.search"`` shows the culprit
    assert out.stdout.strip() == "[]", "importing them pulled in torch"
