"""CoarseSampler as a drop-in for TPESampler (no search_space), and the parts of its search:
the batched constraint, fantasised running trials, the surrogates and the acquisition. (How it
compares with random search at equal budget is ``benchmarks/bench_beats_random.py``'s.)"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    RelativeSamplerTestCase,
    SingleOnlySamplerTestCase,
)
from optuna.trial import TrialState
from scipy.stats import spearmanr
from sklearn.tree import DecisionTreeRegressor

from jointnas.predictors.neural import NeuralPredictor
from jointnas.samplers.acquisition import ACQUISITIONS, score
from jointnas.samplers.coarse import PREDICTED_ATTR, SOURCE_ATTR, CoarseSampler
from jointnas.samplers.feasible import FeasibleSampler
from jointnas.samplers.surrogate import Ensemble, Single, TreeRegressor, transform_target
from jointnas.spaces.encoding import Encoder
from jointnas.testing.problems import THREE_PARAMS, three_params_value

optuna.logging.set_verbosity(optuna.logging.ERROR)

Flt, Int, Cat = FloatDistribution, IntDistribution, CategoricalDistribution
SPACE = THREE_PARAMS
value = three_params_value


def limit(p: Mapping[str, Any]) -> list[float]:
    return [p["x"] + p["n"] - 6.0]


def objective(trial: optuna.Trial) -> float:
    p = {
        "x": trial.suggest_float("x", -5.0, 5.0),
        "n": trial.suggest_int("n", 0, 10),
        "c": trial.suggest_categorical("c", ["a", "b", "c"]),
    }
    return value(p)


# -- Optuna's sampler suites, without search_space ------------------------------------------------
class _Inferred:
    @pytest.fixture(
        params=["xgboost", "gp", *(pytest.param(n, marks=pytest.mark.slow) for n in ("gp-onehot",))]
    )
    def sampler(self, request: pytest.FixtureRequest) -> Callable[[], CoarseSampler]:
        return lambda: CoarseSampler(
            seed=0, n_startup_trials=2, pool_size=32, ensemble_size=2, surrogate=request.param
        )


class TestBasicSuiteInferred(_Inferred, BasicSamplerTestCase):
    pass


class TestRelativeSuiteInferred(_Inferred, RelativeSamplerTestCase):
    pass


class TestSingleOnlySuiteInferred(_Inferred, SingleOnlySamplerTestCase):
    pass


# -- drop-in ----------------------------------------------------------------------------------
def test_dropin_infers_the_space_and_keeps_the_constraint_after_the_first_trial() -> None:
    study = optuna.create_study(sampler=CoarseSampler(seed=0, constraint=limit))
    study.optimize(objective, n_trials=25)
    # the first trial is sampled before any space is known (like TPE's first trial)
    assert study.trials[0].system_attrs.get(SOURCE_ATTR) is None
    later = study.trials[1:]
    assert all(t.system_attrs[SOURCE_ATTR] in ("sobol", "predicted", "explore") for t in later)
    assert all(limit(t.params)[0] <= 0 for t in later)
    assert {t.system_attrs[SOURCE_ATTR] for t in later} >= {"sobol", "predicted"}


def test_dropin_samples_parameters_outside_the_inferred_space_independently() -> None:
    def conditional(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number % 2:
            return x + trial.suggest_float("extra", 0.0, 1.0)
        return x

    study = optuna.create_study(sampler=CoarseSampler(seed=0))
    study.optimize(conditional, n_trials=12)
    assert all(0.0 <= t.params.get("extra", 0.0) <= 1.0 for t in study.trials)
    assert study.trials[-1].system_attrs[SOURCE_ATTR] in ("predicted", "explore")


def test_dropin_same_seed_same_proposals() -> None:
    def params(seed: int) -> list[dict]:
        study = optuna.create_study(sampler=CoarseSampler(seed=seed, constraint=limit))
        study.optimize(objective, n_trials=14)
        return [t.params for t in study.trials]

    assert params(3) == params(3)
    assert params(3) != params(4)


def test_dropin_is_random_only_for_the_first_trial_then_follows_its_surrogate() -> None:
    """Trial 0 is what a RandomSampler with the same seed draws (no space is known yet); after
    the quasi-random startup every proposal comes from the surrogate and none is the random
    sampler's."""
    study = optuna.create_study(sampler=CoarseSampler(seed=5, exploration=0.0))
    study.optimize(objective, n_trials=12)
    random = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=5))
    random.optimize(objective, n_trials=12)
    assert study.trials[0].params == random.trials[0].params
    sources = [t.system_attrs.get(SOURCE_ATTR) for t in study.trials]
    assert sources == [None] + ["sobol"] * 3 + ["predicted"] * 8
    later = zip(study.trials[4:], random.trials[4:], strict=True)
    assert all(ours.params != theirs.params for ours, theirs in later)
    assert all(PREDICTED_ATTR in t.system_attrs for t in study.trials[4:])


# -- the batched constraint ---------------------------------------------------------------------
def test_constraint_batch_and_the_per_candidate_constraint_both_hold() -> None:
    enc = Encoder(SPACE)

    def batch(X: np.ndarray) -> np.ndarray:
        cols = enc.columns(X)
        return (cols["x"] + cols["n"] - 6.0)[:, None]

    def run(**kwargs: Any) -> list[dict]:
        sampler = CoarseSampler(search_space=SPACE, seed=1, ensemble_size=2, **kwargs)
        study = optuna.create_study(sampler=sampler)
        study.optimize(objective, n_trials=16)
        return [t.params for t in study.trials]

    by_row, by_batch = run(constraint=limit), run(constraint_batch=batch)
    assert all(limit(p)[0] <= 0 for p in by_batch + by_row)
    # the quasi-random start is the same feasible Sobol prefix; later the plain constraint is
    # checked lazily over a pool of unchecked Sobol rows, the batch one over feasible rows
    assert by_row[:4] == by_batch[:4]
    assert min(map(value, by_row)) < 1.5 and min(map(value, by_batch)) < 1.5


def test_a_plain_constraint_is_checked_lazily_in_acquisition_order() -> None:
    """A Python constraint is called for a fraction of the candidates, not for every one of
    the pool, the mutants and the hill-climb: candidates are scored first, then checked best
    first until one is feasible. (The GP's expected improvement is highest where no trial is,
    here the infeasible corner, so the walk is hundreds deep on this toy constraint.)"""
    calls: list[int] = []

    def counted(p: Mapping[str, Any]) -> list[float]:
        calls.append(1)
        return limit(p)

    per_trial: list[int] = []
    sampler = CoarseSampler(search_space=SPACE, constraint=counted, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=20, callbacks=[lambda *_: per_trial.append(len(calls))])
    spent = np.diff([0, *per_trial])
    sources = [t.system_attrs[SOURCE_ATTR] for t in study.trials]
    predicted = [n for n, source in zip(spent, sources, strict=True) if source == "predicted"]
    assert len(predicted) >= 10
    # the pool holds 2,048 / 0.59 -> 4,096 unchecked candidates, plus mutants and the climb;
    # the first proposal also probes the feasible rate once (256 calls), which sizes it
    assert max(predicted) < 1024 and np.median(predicted) < 640, predicted
    assert all(limit(t.params)[0] <= 0 for t in study.trials)


def test_constraint_batch_needs_the_search_space() -> None:
    with pytest.raises(ValueError, match="constraint_batch"):
        CoarseSampler(constraint_batch=lambda X: np.zeros((len(X), 1)))


def test_constraint_batch_of_the_wrong_shape_is_refused() -> None:
    sampler = CoarseSampler(search_space=SPACE, constraint_batch=lambda X: np.zeros(3), seed=0)
    study = optuna.create_study(sampler=sampler)
    with pytest.raises(ValueError, match="constraint_batch returned"):
        study.optimize(objective, n_trials=1)


# -- fantasies ------------------------------------------------------------------------------------
class Spy:
    def __init__(self) -> None:
        self.model = DecisionTreeRegressor(random_state=0)
        self.fits: list[int] = []

    def fit(self, X: np.ndarray, y: np.ndarray) -> Spy:
        self.fits.append(len(X))
        self.model.fit(X, y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict(X)


def test_running_trials_enter_the_fit_as_fantasies() -> None:
    """A predictor has no joint posterior: the default q-EI falls back to fantasies at the
    predicted mean."""
    spy = Spy()
    sampler = CoarseSampler(
        search_space=SPACE, predictor=spy, n_startup_trials=4, exploration=0.0, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=6)
    running = study.ask()  # proposes (fit on 6) and records its proposal; stays RUNNING
    objective(running)
    assert spy.fits[-1] == 6
    second = study.ask()  # sees the running one as a fantasy: 6 + 1 rows
    objective(second)
    assert spy.fits[-1] == 7
    assert running.params != second.params
    assert study.trials[-2].state == TrialState.RUNNING


# -- surrogates and acquisition --------------------------------------------------------------
def test_gp_surrogate_is_conditioned_on_every_trial_between_refits() -> None:
    """Kernel parameters fitted once, on the 4 startup trials (refit_growth=1), and every later
    trial conditioned on: the search still closes in on the optimum (0; median of 3 seeds)."""
    best = []
    for seed in range(3):
        sampler = CoarseSampler(search_space=SPACE, surrogate="gp", refit_growth=1.0, seed=seed)
        study = optuna.create_study(sampler=sampler)
        study.optimize(objective, n_trials=16)
        (space,) = [sampler._fixed]
        assert space.model._train.shape[0] == 15  # every completed trial before the last ask
        assert space.fitted_on is not None and len(space.fitted_on) - 1 < 15  # kernel: older
        best.append(study.best_value)
    assert np.median(best) < 0.5, best


@functools.cache
def constrained_trials(acquisition: str | None) -> tuple[optuna.trial.FrozenTrial, ...]:
    """14 trials on ``SPACE`` under ``limit``, seed 0: a CoarseSampler with this acquisition
    (no exploration, so every proposal after the 4 startup ones is the acquisition's), or a
    plain FeasibleSampler for ``None``."""
    if acquisition is None:
        sampler: optuna.samplers.BaseSampler = FeasibleSampler(
            search_space=SPACE, constraint=limit, seed=0
        )
    else:
        sampler = CoarseSampler(
            search_space=SPACE,
            constraint=limit,
            acquisition=acquisition,
            ensemble_size=3,
            exploration=0.0,
            seed=0,
        )
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=14)
    return tuple(study.trials)


@pytest.mark.parametrize("acquisition", ACQUISITIONS)
def test_every_acquisition_proposes_feasible_candidates(acquisition: str) -> None:
    """Feasible, and driven by the acquisition: the startup trials are the same quasi-random
    points whatever the acquisition, then every proposal is the surrogate's, unlike the
    FeasibleSampler's with the same seed and mostly unlike each other acquisition's."""
    trials = constrained_trials(acquisition)
    assert all(limit(t.params)[0] <= 0 for t in trials)
    assert [t.system_attrs[SOURCE_ATTR] for t in trials] == ["sobol"] * 4 + ["predicted"] * 10
    plain = constrained_trials(None)
    assert all(a.params != b.params for a, b in zip(trials[4:], plain[4:], strict=True))
    for other in set(ACQUISITIONS) - {acquisition}:
        others = constrained_trials(other)
        assert [t.params for t in trials[:4]] == [t.params for t in others[:4]]
        differ = [a.params != b.params for a, b in zip(trials[4:], others[4:], strict=True)]
        assert sum(differ) >= len(differ) / 2, (acquisition, other, differ)


@pytest.mark.usefixtures("one_torch_thread")  # 10x slower on 2 threads of a busy machine
def test_neural_deep_ensemble_runs() -> None:
    """The "neural" surrogate is an ensemble of distinct, fitted JointNAS predictors: finite
    predictions, one per member and row, that disagree (a spread for the acquisition); refitted
    on 32 trials of the objective, it ranks them well and beats predicting their mean."""
    sampler = CoarseSampler(
        search_space=SPACE, surrogate="neural", ensemble_size=2, n_startup_trials=4, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=6)
    assert study.trials[-1].system_attrs[SOURCE_ATTR] in ("predicted", "explore")
    model = sampler._fixed.model
    assert isinstance(model, Ensemble) and len(model.models) == 2
    assert all(isinstance(m, NeuralPredictor) and m.fitted for m in model.models)
    assert model.models[0].seed != model.models[1].seed
    enc = Encoder(SPACE)
    members = model.members(enc.encode([t.params for t in study.trials]))
    assert members.shape == (2, 6) and np.isfinite(members).all()
    assert not np.allclose(members[0], members[1])
    mean, std = model.mean_std(enc.encode([t.params for t in study.trials]))
    assert mean.shape == std.shape == (6,) and (std > 0).all()

    rows = enc.from_unit(np.random.default_rng(0).random((32, len(enc.names))))
    X = enc.encode(rows)
    z = transform_target(-np.array([value(p) for p in rows]), "rank")  # higher is better
    mean, std = model.fit(X, z).mean_std(X)
    assert np.isfinite(mean).all() and std.mean() > 0
    assert np.mean((mean - z) ** 2) < 0.5 * z.var()  # far better than the best constant
    assert spearmanr(mean, z)[0] > 0.6


def test_expected_improvement_rewards_spread_and_mean() -> None:
    class Fixed:
        def __init__(self, mean: list[float], std: list[float]) -> None:
            self.m, self.s = np.array(mean), np.array(std)

        def mean_std(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return self.m, self.s

    rng = np.random.default_rng(0)
    X = np.zeros((4, 1))
    ei = score(Fixed([0.0, 0.0, 1.0, 2.0], [0.5, 1.0, 0.0, 0.0]), X, 1.0, "ei", rng)
    assert ei[1] > ei[0] > 0  # same mean below the best: the unsure one may improve more
    assert ei[2] < ei[0]  # at the best with no spread: nothing to gain (only the tie-break)
    assert ei[3] == pytest.approx(1.0, abs=1e-6)  # sure improvement of 1
    assert score(Fixed([np.nan], [1.0]), X[:1], 0.0, "ei", rng)[0] == -np.inf


def test_rank_target_is_monotone_and_bounded() -> None:
    y = np.array([0.1, 100.0, 0.2, 0.2, -5.0])
    z = transform_target(y, "rank")
    assert np.argsort(z, kind="stable").tolist() == np.argsort(y, kind="stable").tolist()
    assert z[2] == z[3] and np.abs(z).max() < 2.0


def test_ensemble_members_differ_and_single_has_no_spread() -> None:
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 3)), rng.random(40)
    mean, std = Ensemble(make=lambda s: TreeRegressor(seed=s), size=4).fit(X, y).mean_std(X)
    assert mean.shape == (40,) and (std > 0).mean() > 0.5
    _, std1 = Single(DecisionTreeRegressor(random_state=0)).fit(X, y).mean_std(X)
    assert not std1.any()
