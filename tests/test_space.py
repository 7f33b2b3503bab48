"""Tests for jointnas.spaces: the FBNetV3 joint space, its encoder, and the generic Encoder."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import optuna
import pytest
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from jointnas.spaces.base import Candidate
from jointnas.spaces.encoding import Encoder, check_value
from jointnas.spaces.fbnetv3 import PRESETS, Arch, FBNetV3Space, Recipe
from jointnas.spaces.nets.cost import cost

PRESET_NAMES = sorted(PRESETS)
COST_ARGS = {
    "small": {"num_classes": 10, "in_channels": 1},
    "imagenet": {"num_classes": 1000, "in_channels": 3},
}


@pytest.fixture(scope="module", params=PRESET_NAMES)
def space(request: pytest.FixtureRequest) -> FBNetV3Space:
    return FBNetV3Space(preset=request.param)


def _samples(space: FBNetV3Space, n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def _error(space: FBNetV3Space, params: dict) -> str:
    with pytest.raises(ValueError) as info:
        space.decode(params)
    return str(info.value)


# --------------------------------------------------------------------------- structure


def test_presets_have_expected_parameters_and_fixed_values() -> None:
    small = FBNetV3Space()  # default preset
    assert small.preset.name == "small"
    assert small.name == "fbnetv3-small"
    # single-point ranges are fixed, not searched
    assert small.fixed == {"s1_expansion": 1}
    assert "s1_expansion" not in small.distributions
    assert small.distributions["s2_width"] == IntDistribution(16, 32, step=8)
    assert small.distributions["resolution"] == IntDistribution(16, 28, step=4)
    assert small.distributions["s1_kernel"] == CategoricalDistribution((3, 5))
    assert small.distributions["lr"] == FloatDistribution(0.01, 0.5, log=True)
    assert small.distributions["ema"] == CategoricalDistribution((False, True))

    imagenet = FBNetV3Space(preset="imagenet")
    assert imagenet.fixed == {"s1_expansion": 1, "s7_expansion": 6}
    assert len(imagenet.preset.stages) == 7
    assert {f"s{i}_depth" for i in range(1, 8)} <= set(imagenet.distributions)

    with pytest.raises(ValueError, match="unknown preset 'cifar'"):
        FBNetV3Space(preset="cifar")


def test_decode_builds_frozen_arch_and_recipe(space: FBNetV3Space) -> None:
    params = _samples(space, 1, seed=3)[0]
    cand = space.decode(params)
    assert isinstance(cand, Candidate)
    assert isinstance(cand.arch, Arch) and isinstance(cand.recipe, Recipe)
    arch = cand.arch
    assert arch.resolution == params["resolution"]
    assert arch.stem_width == params["stem_width"]
    assert len(arch.stages) == len(space.preset.stages)
    for i, (stage, spec) in enumerate(zip(arch.stages, space.preset.stages, strict=True), 1):
        assert stage.width == params[f"s{i}_width"]
        assert stage.depth == params[f"s{i}_depth"]
        assert stage.kernel == params[f"s{i}_kernel"]
        expected_exp = params.get(f"s{i}_expansion", space.fixed.get(f"s{i}_expansion"))
        assert stage.expansion == expected_exp
        assert (stage.stride, stage.se, stage.act) == (spec.stride, spec.se, spec.act)
    assert cand.recipe.optimizer == params["optimizer"]
    assert cand.recipe.ema is params["ema"]
    with pytest.raises(AttributeError):
        arch.resolution = 1  # type: ignore[misc]


# --------------------------------------------------------------------------- round trips


def test_params_decode_to_params_round_trip(space: FBNetV3Space) -> None:
    samples = _samples(space, 200, seed=1)
    for params in samples:
        assert space.to_params(space.decode(params)) == params
    # and the samples really vary (not 200 copies of one point)
    assert len({tuple(sorted(p.items(), key=lambda kv: kv[0])) for p in samples}) == 200


def test_to_params_rejects_arch_contradicting_a_fixed_value() -> None:
    space = FBNetV3Space(preset="small")
    cand = space.decode(space.smallest_params())
    stages = (replace(cand.arch.stages[0], expansion=3), *cand.arch.stages[1:])
    bad = Candidate(replace(cand.arch, stages=stages), cand.recipe)
    with pytest.raises(ValueError, match=r"s1_expansion = 3 .*fixes it at 1"):
        space.to_params(bad)


def test_encode_decode_matrix_round_trip(space: FBNetV3Space) -> None:
    samples = _samples(space, 200, seed=2)
    X = space.encode(samples)
    assert X.shape == (200, space.encoder.width)
    assert np.all((X >= 0.0) & (X <= 1.0))
    back = space.decode_matrix(X)
    for params, decoded in zip(samples, back, strict=True):
        assert list(decoded) == list(params)
        for name, dist in space.distributions.items():
            if isinstance(dist, FloatDistribution):
                assert decoded[name] == pytest.approx(params[name], rel=1e-9)
            else:
                assert decoded[name] == params[name]
                assert type(decoded[name]) is type(params[name])


def test_encoding_layout_one_hot_and_log_scale(space: FBNetV3Space) -> None:
    enc = space.encoder
    samples = _samples(space, 100, seed=4)
    X = space.encode(samples)
    names = enc.feature_names
    assert len(names) == enc.width == len(set(names))
    for name, dist in space.distributions.items():
        if isinstance(dist, CategoricalDistribution):
            cols = [names.index(f"{name}={c}") for c in dist.choices]
            block = X[:, cols]
            assert set(np.unique(block)) <= {0.0, 1.0}
            np.testing.assert_array_equal(block.sum(axis=1), 1.0)
            # the hot column is the chosen value's
            for row, params in zip(block, samples, strict=True):
                assert dist.choices[int(np.argmax(row))] == params[name]
        else:
            assert name in names
    # numeric ends map to 0 and 1
    lo = dict(space.smallest_params())
    col = names.index("resolution")
    assert space.encode([lo])[0, col] == 0.0
    # log params: the geometric midpoint encodes to 0.5, the arithmetic one does not
    for log_name in ("lr", "weight_decay"):
        dist = space.distributions[log_name]
        assert dist.log
        j = names.index(log_name)
        geo = math.sqrt(dist.low * dist.high)
        x = space.encode([{**lo, log_name: geo}])[0, j]
        assert x == pytest.approx(0.5, abs=1e-12)
        x_arith = space.encode([{**lo, log_name: (dist.low + dist.high) / 2}])[0, j]
        assert x_arith > 0.8  # linear midpoint is far up the log scale
        assert space.encode([{**lo, log_name: dist.high}])[0, j] == pytest.approx(1.0)
    # a linear float param's midpoint encodes to 0.5
    mix = space.distributions["mixup"]
    j = names.index("mixup")
    mid = (mix.low + mix.high) / 2
    assert space.encode([{**lo, "mixup": mid}])[0, j] == pytest.approx(0.5)


def test_decode_matrix_snaps_off_grid_rows(space: FBNetV3Space) -> None:
    rng = np.random.default_rng(5)
    X = rng.random((50, space.encoder.width))  # not one-hot, not on any grid
    for params in space.decode_matrix(X):
        assert space.validate(params) == params
    with pytest.raises(ValueError, match="columns"):
        space.decode_matrix(np.zeros((2, space.encoder.width + 1)))


# --------------------------------------------------------------------------- generic encoder

MIXED = {
    "units": IntDistribution(2, 20, step=3),
    "hidden": IntDistribution(1, 1000, log=True),
    "lr": FloatDistribution(1e-4, 1.0, log=True),
    "shift": FloatDistribution(-1.0, 1.0, step=0.25),
    "plain": FloatDistribution(0.0, 5.0),
    "kind": CategoricalDistribution(("a", None, True, False, "b")),
}


def test_generic_encoder_round_trip_on_mixed_space() -> None:
    enc = Encoder(MIXED)
    assert enc.names == list(MIXED)
    assert enc.feature_names == [
        "units",
        "hidden",
        "lr",
        "shift",
        "plain",
        "kind=a",
        "kind=None",
        "kind=True",
        "kind=False",
        "kind=b",
    ]
    rng = np.random.default_rng(6)
    rows = enc.from_unit(rng.random((500, len(MIXED))))
    X = enc.encode(rows)
    assert X.shape == (500, enc.width)
    assert np.all((X >= 0) & (X <= 1))
    np.testing.assert_array_equal(X[:, 5:].sum(axis=1), 1.0)
    for row, back in zip(rows, enc.decode(X), strict=True):
        for name in ("units", "hidden", "kind", "shift"):
            assert back[name] == row[name]
            assert type(back[name]) is type(row[name])
        for name in ("lr", "plain"):
            assert back[name] == pytest.approx(row[name], rel=1e-9)
    # log int: the geometric midpoint of [1, 1000] encodes to 0.5
    base = rows[0]
    x = enc.encode([{**base, "hidden": 1}, {**base, "hidden": 1000}])
    assert x[:, 1].tolist() == [0.0, 1.0]
    assert enc.encode([{**base, "lr": 1e-2}])[0, 2] == pytest.approx(0.5)


def test_generic_from_unit_covers_choices_and_stays_on_grid() -> None:
    enc = Encoder(MIXED)
    rng = np.random.default_rng(7)
    rows = enc.from_unit(rng.random((3000, len(MIXED))))
    kinds = [r["kind"] for r in rows]
    for choice in MIXED["kind"].choices:
        assert any(k is choice or (k == choice and type(k) is type(choice)) for k in kinds)
    assert sorted({r["units"] for r in rows}) == list(range(2, 21, 3))
    assert {r["shift"] for r in rows} == {-1.0 + 0.25 * k for k in range(9)}
    hidden = [r["hidden"] for r in rows]
    assert min(hidden) >= 1 and max(hidden) <= 1000 and all(type(h) is int for h in hidden)
    assert min(hidden) < 5 and max(hidden) > 500  # log-uniform reaches both ends
    # log-uniform: about half the mass below the geometric midpoint (~31.6)
    assert 0.4 < np.mean(np.array(hidden) < math.sqrt(1000)) < 0.6
    for r in rows:
        assert 1e-4 <= r["lr"] <= 1.0
        assert 0.0 <= r["plain"] <= 5.0
        assert enc.validate(r) == r
    # the corners of the unit cube land on the ends of every range
    lo, hi = enc.from_unit(np.array([[0.0] * 6, [1.0] * 6]))
    assert (lo["units"], lo["hidden"], lo["shift"], lo["kind"]) == (2, 1, -1.0, "a")
    assert (hi["units"], hi["hidden"], hi["shift"], hi["kind"]) == (20, 1000, 1.0, "b")
    assert lo["lr"] == pytest.approx(1e-4) and hi["lr"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="columns"):
        enc.from_unit(np.zeros((1, 5)))


def test_encoder_keeps_bools_and_ints_apart_in_categoricals() -> None:
    enc = Encoder({"c": CategoricalDistribution((1, True, 0, False, 1.5))})
    rows = [{"c": v} for v in (1, True, 0, False, 1.5)]
    X = enc.encode(rows)
    np.testing.assert_array_equal(X, np.eye(5))
    back = enc.decode(X)
    assert [type(r["c"]) for r in back] == [int, bool, int, bool, float]
    assert [r["c"] for r in back] == [1, True, 0, False, 1.5]


def test_encoder_rejects_bad_spaces_and_values() -> None:
    with pytest.raises(ValueError, match="at least one parameter"):
        Encoder({})
    with pytest.raises(TypeError, match="'x'"):
        Encoder({"x": object()})  # type: ignore[dict-item]
    step = IntDistribution(2, 20, step=3)
    assert check_value("n", step, 5) == 5
    assert check_value("n", step, np.int64(8)) == 8 and type(check_value("n", step, 8.0)) is int
    mixed = CategoricalDistribution((3, 5, True))  # numpy scalars from a DataFrame row count
    assert type(check_value("k", mixed, np.int64(5))) is int
    assert check_value("k", mixed, np.bool_(True)) is True
    with pytest.raises(ValueError, match="'k'"):
        check_value("k", mixed, np.float64(5.0))
    for bad in (4, 23, 3.5, True, "5", None, float("nan"), float("inf"), 10**400):
        with pytest.raises(ValueError, match=r"'n' .*\[2, 20\] in steps of 3"):
            check_value("n", step, bad)
    flt = FloatDistribution(1e-4, 1.0, log=True)
    for bad in (0.0, 2.0, float("nan"), float("-inf"), False, "0.1"):
        with pytest.raises(ValueError, match=r"'lr' .*\[0.0001, 1.0\] \(log scale\)"):
            check_value("lr", flt, bad)
    grid = FloatDistribution(-1.0, 1.0, step=0.25)
    assert check_value("s", grid, 0.5) == 0.5
    with pytest.raises(ValueError, match=r"in steps of 0\.25"):
        check_value("s", grid, 0.3)
    cat = CategoricalDistribution(("a", None, True))
    assert check_value("k", cat, None) is None
    with pytest.raises(ValueError, match=r"'k' = 1 .*one of 'a', None, True"):
        check_value("k", cat, 1)


# --------------------------------------------------------------------------- errors


def test_bad_values_name_the_parameter_and_allowed_range() -> None:
    space = FBNetV3Space(preset="small")
    good = space.smallest_params()
    message = _error(space, {**good, "s2_width": 20})
    assert "s2_width" in message and "[16, 32]" in message and "steps of 8" in message
    message = _error(space, {**good, "s2_width": 40})
    assert "s2_width" in message and "[16, 32]" in message
    message = _error(space, {**good, "optimizer": "adam"})
    assert "optimizer" in message and "'adam'" in message
    assert "'sgd', 'rmsprop', 'adamw'" in message
    message = _error(space, {**good, "s3_kernel": 7})
    assert "s3_kernel" in message and "one of 3, 5" in message
    message = _error(space, {**good, "lr": 1.0})
    assert "'lr'" in message and "[0.01, 0.5]" in message and "log scale" in message

    missing = {k: v for k, v in good.items() if k != "dropout"}
    message = _error(space, missing)
    assert "missing ['dropout']" in message and "unknown []" in message
    message = _error(space, {**good, "s1_expansion": 1})  # fixed values are not params
    assert "unknown ['s1_expansion']" in message
    message = _error(space, {**good, "batch_size": 32})
    assert "unknown ['batch_size']" in message


def test_bools_are_not_confused_with_ints() -> None:
    space = FBNetV3Space(preset="small")
    good = space.smallest_params()
    message = _error(space, {**good, "ema": 1})
    assert "'ema' = 1" in message and "False, True" in message
    message = _error(space, {**good, "ema": 0})
    assert "'ema' = 0" in message
    assert space.decode({**good, "ema": True}).recipe.ema is True
    message = _error(space, {**good, "s2_depth": True})
    assert "'s2_depth' = True" in message and "[1, 3]" in message
    message = _error(space, {**good, "mixup": False})
    assert "'mixup' = False" in message


def test_recipe_validation_errors() -> None:
    Recipe("sgd", 0.1, 1e-4)  # defaults are valid
    with pytest.raises(ValueError, match=r"recipe lr = -0.1 must be a finite number >= 0"):
        Recipe("sgd", -0.1, 1e-4)
    with pytest.raises(ValueError, match="lr must be > 0"):
        Recipe("sgd", 0.0, 1e-4)
    with pytest.raises(ValueError, match="weight_decay = nan"):
        Recipe("sgd", 0.1, float("nan"))
    with pytest.raises(ValueError, match=r"recipe dropout = 1.0 must be < 1"):
        Recipe("sgd", 0.1, 1e-4, dropout=1.0)
    with pytest.raises(ValueError, match=r"recipe dropout = 1.5 must be < 1"):
        Recipe("sgd", 0.1, 1e-4, dropout=1.5)
    with pytest.raises(ValueError, match="label_smoothing = 1"):
        Recipe("adamw", 0.1, 1e-4, label_smoothing=1)
    with pytest.raises(ValueError, match=r"mixup = -0\.5"):
        Recipe("adamw", 0.1, 1e-4, mixup=-0.5)
    with pytest.raises(ValueError, match="optimizer 'lamb'"):
        Recipe("lamb", 0.1, 1e-4)


# --------------------------------------------------------------------------- sampling


def test_sample_is_deterministic_per_seed(space: FBNetV3Space) -> None:
    a = _samples(space, 20, seed=11)
    b = _samples(space, 20, seed=11)
    c = _samples(space, 20, seed=12)
    assert a == b
    assert a != c
    for params in a + c:
        assert space.validate(params) == params
    # a fresh instance samples the same from the same seed
    assert _samples(FBNetV3Space(preset=space.preset.name), 20, seed=11) == a


def test_sample_covers_every_value(space: FBNetV3Space) -> None:
    samples = _samples(space, 600, seed=13)
    for name, dist in space.distributions.items():
        seen = {p[name] for p in samples}
        if isinstance(dist, CategoricalDistribution):
            assert seen == set(dist.choices), name
        elif isinstance(dist, IntDistribution):
            assert seen == set(range(dist.low, dist.high + 1, dist.step)), name
        else:
            values = np.array(sorted(seen))
            assert dist.low <= values[0] and values[-1] <= dist.high
            assert len(values) == 600  # continuous: no repeats


def test_suggest_with_optuna_random_sampler(space: FBNetV3Space) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    params = space.suggest(trial)
    assert list(params) == list(space.distributions)
    assert space.validate(params) == params
    assert trial.distributions == dict(space.distributions)
    space.decode(params)
    # same sampler seed, same suggestion
    again = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    assert space.suggest(again.ask()) == params


def test_optuna_study_over_suggest(space: FBNetV3Space) -> None:
    args = COST_ARGS[space.preset.name]

    def objective(trial: optuna.trial.Trial) -> float:
        cand = space.decode(space.suggest(trial))
        return cost(cand.arch, **args).mflops

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(objective, n_trials=5)
    assert len(study.trials) == 5
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    for t in study.trials:
        assert space.validate(t.params) == t.params
        assert t.value == pytest.approx(cost(space.decode(t.params).arch, **args).mflops)
    assert study.best_value == min(t.value for t in study.trials)


def test_fingerprint_stable_and_distinct() -> None:
    small_a, small_b = FBNetV3Space(preset="small"), FBNetV3Space(preset="small")
    imagenet = FBNetV3Space(preset="imagenet")
    fp = small_a.fingerprint()
    assert isinstance(fp, str) and len(fp) == 16 and int(fp, 16) >= 0
    assert fp == small_b.fingerprint() == FBNetV3Space().fingerprint()
    assert fp == small_a.fingerprint()  # repeatable
    assert imagenet.fingerprint() != fp
    assert imagenet.fingerprint() == FBNetV3Space(preset="imagenet").fingerprint()
    # a changed range changes the fingerprint
    wider = replace(PRESETS["small"], lr=(0.01, 1.0))
    assert FBNetV3Space(preset=wider).fingerprint() != fp


def test_smallest_params_is_argmin_of_mflops(space: FBNetV3Space) -> None:
    args = COST_ARGS[space.preset.name]
    smallest = space.smallest_params()
    assert space.validate(smallest) == smallest
    floor = cost(space.decode(smallest).arch, **args).flops
    flops = [cost(space.decode(p).arch, **args).flops for p in _samples(space, 500, seed=21)]
    assert floor <= min(flops)
    assert floor < min(flops) or len(set(flops)) == 1  # 500 random draws miss the corner
