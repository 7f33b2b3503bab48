"""CoarseSampler: Optuna's sampler suites, the constraint, determinism, parallel workers,
tightness errors, and that the predictor picks the proposal. (Whether it beats random search
is measured, over seeds, by ``benchmarks/bench_beats_random.py``.)"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import optuna
import pytest
import xgboost
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    RelativeSamplerTestCase,
    SingleOnlySamplerTestCase,
)
from optuna.trial import TrialState
from sklearn.tree import DecisionTreeRegressor

from jointnas.errors import InfeasibleConstraintError
from jointnas.predictors.xgb import XGBoostPredictor
from jointnas.samplers.coarse import PREDICTED_ATTR, PROPOSAL_ATTR, SOURCE_ATTR, CoarseSampler
from jointnas.samplers.feasible import is_feasible
from jointnas.spaces.base import DistributionSpace
from jointnas.spaces.encoding import Encoder
from jointnas.testing.problems import MIXED_TYPES, mixed_types_value

optuna.logging.set_verbosity(optuna.logging.ERROR)

Flt, Int, Cat = FloatDistribution, IntDistribution, CategoricalDistribution

# A mixed-type, non-NAS space: float, log float, int with a step, categorical of mixed types.
MIXED = MIXED_TYPES
mixed_value = mixed_types_value


def mixed_constraint(p: Mapping[str, Any]) -> list[float]:
    """About a fifth of the space: x + n/4 <= 0 and lr <= 0.1."""
    return [p["x"] + p["n"] / 4.0, p["lr"] - 0.1]


def suggest(trial: optuna.trial.BaseTrial, space: Mapping[str, BaseDistribution]) -> dict:
    return DistributionSpace(space).suggest(trial)


def cheap_predictor(space: Mapping[str, BaseDistribution], seed: int = 0) -> XGBoostPredictor:
    return XGBoostPredictor(
        space=DistributionSpace(space), seed=seed, n_estimators=20, max_depth=3, n_jobs=1
    )


def coarse(space: Mapping[str, BaseDistribution], **kwargs: Any) -> CoarseSampler:
    """A small, fast CoarseSampler (pool 128, 20 trees, 4 startup trials)."""
    options: dict[str, Any] = {
        "n_startup_trials": 4,
        "pool_size": 128,
        "seed": 0,
        "max_tries": 4096,
    }
    options.update(kwargs)
    if "predictor" not in kwargs:
        options["predictor"] = cheap_predictor(space, options["seed"] or 0)
    return CoarseSampler(search_space=space, **options)


def run(sampler: CoarseSampler, space: Mapping[str, BaseDistribution], n: int) -> optuna.Study:
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: mixed_value(suggest(t, space)), n_trials=n)
    return study


def key(params: Mapping[str, Any]) -> tuple:
    return tuple((name, type(v).__name__, v) for name, v in sorted(params.items()))


# -- Optuna's reusable sampler suites ------------------------------------------------------------
# CoarseSampler searches a *fixed* space given at construction, but the suites' `sampler` fixture
# is a zero-argument factory and each test has its own objective. The fixture therefore builds
# the sampler for the space of the test under test: from the test's parameters (distributions,
# choices, or the suggest lambdas, read by a recording stand-in trial) plus a table of the
# spaces the unparametrised tests' objectives ask for.

SUITE_SPACES: dict[str, dict[str, BaseDistribution]] = {
    "test_nan_objective_value": {"x": Flt(0.1, 0.2)},
    "test_partial_fixed_sampling": {"x": Flt(-1, 1), "y": Int(-1, 1), "z": Flt(-1, 1)},
    "test_sample_single_distribution": {
        "a": Cat([1]),
        "b": Int(1, 1),
        "c": Int(1, 1, log=True),
        "d": Flt(1.0, 1.0),
        "e": Flt(1.0, 1.0, log=True),
        "f": Flt(1.0, 1.0, step=1.0),
    },
    "test_conditional_parameter_objective": {
        "x": Cat([True, False]),
        "y": Flt(0, 1),
        "z": Flt(0, 1),
    },
    "test_dynamic_range_objective": {"x": Flt(0, 10), "y": Int(0, 10)},  # first range; then drifts
    "test_sample_relative_categorical": {"x": Cat([1, 10, 100]), "y": Cat([-1, -10, -100])},
    "test_sample_relative_mixed": {"y": Cat([-1, -10, -100])},
    "test_trial_relative_params": {"x": Flt(-10, 10), "y": Flt(-10, 10)},
}


class _Recorder:
    """Stands in for a trial to read the distribution a suite's suggest lambda asks for."""

    def __init__(self) -> None:
        self.space: dict[str, BaseDistribution] = {}

    def suggest_float(self, name: str, low: float, high: float, *, step=None, log=False) -> float:
        self.space[name] = Flt(low, high, step=step, log=log)
        return low

    def suggest_int(self, name: str, low: int, high: int, *, step=1, log=False) -> int:
        self.space[name] = Int(low, high, step=step, log=log)
        return low

    def suggest_categorical(self, name: str, choices) -> Any:
        self.space[name] = Cat(choices)
        return choices[0]


def _suite_space(request: pytest.FixtureRequest) -> dict[str, BaseDistribution]:
    callspec = getattr(request.node, "callspec", None)
    params = callspec.params if callspec is not None else {}
    space = dict(SUITE_SPACES.get(request.node.originalname, {}))
    recorder = _Recorder()
    for name, value in params.items():
        if name == "distribution":
            space["x"] = value
        elif name == "choices":
            space["x"] = Cat(value)
        elif name in ("x_distribution", "y_distribution"):
            space[name[0]] = value
        elif name.startswith("suggest_method_"):
            value(recorder)
    space.update(recorder.space)
    return space or {"x": Flt(0.0, 1.0)}  # tests that only call sample_independent


#: the surrogates that are not the default's candidates run their suites with ``-m slow``
SLOW_SURROGATES = [pytest.param(name, marks=pytest.mark.slow) for name in ("gp-onehot", "neural")]


class _CoarseFactory:
    """The suites' ``sampler`` fixture, first in each suite's bases so that it overrides theirs:
    once with a user's predictor and once per surrogate."""

    @pytest.fixture(params=["predictor", "xgboost", "gp", *SLOW_SURROGATES])
    def sampler(self, request: pytest.FixtureRequest) -> Callable[[], CoarseSampler]:
        space = _suite_space(request)
        # 2 startup trials (raised to the XGBoost predictor's minimum of 4) and a cheap
        # predictor or a small ensemble: the suites' 10- and 20-trial objectives reach the
        # predicted phase. The always-feasible Python constraint exercises the (lazy)
        # constraint path.
        options: dict[str, Any] = {"n_startup_trials": 2, "pool_size": 32}
        options["constraint"] = lambda p: [0.0]
        if request.param != "predictor":
            options |= {"predictor": None, "surrogate": request.param, "ensemble_size": 2}
        return lambda: coarse(space, **options)


# Not MultiObjectiveSamplerTestCase: CoarseSampler is single-objective (SingleOnly checks that).
class TestBasicSuite(_CoarseFactory, BasicSamplerTestCase):
    pass


class TestRelativeSuite(_CoarseFactory, RelativeSamplerTestCase):
    pass


class TestSingleOnlySuite(_CoarseFactory, SingleOnlySamplerTestCase):
    pass


# -- constructor ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"search_space": {}}, ValueError, "search_space"),
        ({"search_space": [("x", Flt(0, 1))]}, TypeError, "search_space"),
        ({"search_space": {"x": object()}}, TypeError, "search_space"),
        ({"constraint": 3}, TypeError, "constraint"),
        ({"predictor": object()}, TypeError, "predictor"),
        ({"n_startup_trials": 0}, ValueError, "n_startup_trials"),
        ({"n_startup_trials": 2.5}, TypeError, "n_startup_trials"),
        ({"pool_size": 0}, ValueError, "pool_size"),
        ({"pool_size": 100, "max_tries": 50}, ValueError, "pool_size"),
        ({"refit_interval": 0}, ValueError, "refit_interval"),
        ({"exploration": 1.5}, ValueError, "exploration"),
        ({"exploration": "0.1"}, TypeError, "exploration"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": True}, TypeError, "seed"),
        ({"max_tries": 0}, ValueError, "max_tries"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict, error: type, name: str) -> None:
    args: dict[str, Any] = {"search_space": {"x": Flt(0, 1)}, "seed": 0, **kwargs}
    with pytest.raises(error, match=name):
        CoarseSampler(**args)


def test_positional_arguments_are_refused() -> None:
    with pytest.raises(TypeError):
        CoarseSampler({"x": Flt(0, 1)})  # type: ignore[misc]


# -- behaviour -----------------------------------------------------------------------------------
def test_no_proposal_violates_the_constraint_and_sources_are_recorded() -> None:
    study = optuna.create_study(sampler=coarse(MIXED, constraint=mixed_constraint, seed=3))
    study.optimize(lambda t: mixed_value(suggest(t, MIXED)), n_trials=40)
    assert all(is_feasible(mixed_constraint(t.params)) for t in study.trials)
    sources = [t.system_attrs[SOURCE_ATTR] for t in study.trials]
    assert sources[:4] == ["sobol"] * 4
    assert set(sources[4:]) <= {"predicted", "explore"} and "predicted" in sources[4:]
    for t in study.trials:
        assert t.system_attrs[PROPOSAL_ATTR] == t.params
        assert (PREDICTED_ATTR in t.system_attrs) == (t.system_attrs[SOURCE_ATTR] == "predicted")
    assert len({key(t.params) for t in study.trials}) == 40


def test_mixed_type_space_keeps_types() -> None:
    study = run(coarse(MIXED, seed=1, exploration=0.3), MIXED, 16)
    encoder = Encoder(MIXED)
    for t in study.trials:
        assert encoder.validate(t.params) == t.params
        assert type(t.params["n"]) is int and t.params["n"] % 2 == 0
        assert type(t.params["x"]) is float and 1e-4 <= t.params["lr"] <= 1.0
    chosen = {(type(t.params["act"]), t.params["act"]) for t in study.trials}
    assert len(chosen) >= 3  # categorical choices of several types were proposed


#: a user's predictor, and each surrogate a user picks by name (neural: covered by -m slow)
MODELS = [
    {},
    {"predictor": None, "surrogate": "xgboost", "ensemble_size": 2},
    {"predictor": None, "surrogate": "gp"},
    {"predictor": None, "surrogate": "gp+xgboost", "ensemble_size": 2},
]
MODEL_IDS = ["predictor", "xgboost", "gp", "gp+xgboost"]


@pytest.mark.parametrize("model", MODELS, ids=MODEL_IDS)
def test_same_seed_same_proposals_different_seed_differs(model: dict) -> None:
    def params(seed: int) -> list[dict]:
        return [t.params for t in run(coarse(MIXED, seed=seed, **model), MIXED, 10).trials]

    first = params(5)
    assert first == params(5)
    other = params(6)
    assert all(a != b for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize("model", MODELS, ids=MODEL_IDS)
def test_resumed_study_proposes_what_one_process_would(tmp_path, model: dict) -> None:
    """A new sampler instance on the same storage (a restarted worker) refits the same model
    from the storage and continues with the same proposals, refit schedule included. A journal
    file: proposals survive the JSON round trip (None and True among the choices)."""

    def make() -> CoarseSampler:
        return coarse(
            MIXED, seed=2, refit_interval=3, exploration=0.2, constraint=mixed_constraint, **model
        )

    whole = run(make(), MIXED, 14)
    backend = optuna.storages.journal.JournalFileBackend(str(tmp_path / "journal.log"))
    storage = optuna.storages.JournalStorage(backend)
    part = optuna.create_study(storage=storage, study_name="s", sampler=make())
    part.optimize(lambda t: mixed_value(suggest(t, MIXED)), n_trials=9)
    resumed = optuna.load_study(storage=storage, study_name="s", sampler=make())
    resumed.optimize(lambda t: mixed_value(suggest(t, MIXED)), n_trials=5)
    assert [t.params for t in resumed.trials] == [t.params for t in whole.trials]
    assert [t.system_attrs for t in resumed.trials] == [t.system_attrs for t in whole.trials]


def test_reseed_rng_changes_the_proposals() -> None:
    sampler = coarse(MIXED, seed=0)
    before = run(sampler, MIXED, 3).trials
    sampler.reseed_rng()
    after = run(sampler, MIXED, 3).trials
    assert all(a.params != b.params for a, b in zip(before, after, strict=True))


class Spy:
    """A sklearn regressor that records the shapes it is fitted on and asked to predict."""

    def __init__(self) -> None:
        self.model = DecisionTreeRegressor(random_state=0)
        self.fits: list[tuple[int, ...]] = []
        self.predicts: list[tuple[int, ...]] = []

    def fit(self, X: np.ndarray, y: np.ndarray) -> Spy:
        self.fits.append(X.shape)
        self.model.fit(X, y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        self.predicts.append(X.shape)
        return self.model.predict(X)


def test_any_regressor_batched_predicts_per_proposal_and_refit_interval() -> None:
    spy = Spy()
    sampler = coarse(
        MIXED, predictor=spy, refit_interval=3, exploration=0.0, pool_size=64, local_search=False
    )
    run(sampler, MIXED, 13)
    width = Encoder(MIXED).width
    # trials 4..12: one call on the whole pool, one on the proposal (its recorded prediction)
    assert spy.predicts == [(64, width), (1, width)] * 9
    assert spy.fits == [(4, width), (7, width), (10, width)]  # every 3 new completed trials


class Oracle:
    """A predictor that knows the objective (higher is better: minus ``mixed_value``), ignores
    its fits, and records every batch it scores."""

    def __init__(self) -> None:
        self.encoder = Encoder(MIXED)
        self.batches: list[np.ndarray] = []

    def fit(self, X: np.ndarray, y: np.ndarray) -> Oracle:
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        self.batches.append(X.copy())
        return np.array([-mixed_value(p) for p in self.encoder.decode(X)])


def test_after_startup_the_predictor_picks_the_proposal() -> None:
    """Each proposal after the 4 startup trials is the pool member the predictor scores best
    (not a random one): a sampler that ignored its predictor would fail this. Its proposals
    also differ from a RandomSampler's with the same seed, and the startup ones are Sobol's."""
    oracle = Oracle()
    sampler = coarse(MIXED, predictor=oracle, exploration=0.0, pool_size=64, local_search=False)
    study = run(sampler, MIXED, 10)
    later = study.trials[4:]
    assert [t.system_attrs[SOURCE_ATTR] for t in study.trials] == ["sobol"] * 4 + ["predicted"] * 6
    pools = oracle.batches[0::2]  # per proposal: the pool, then the proposal itself
    assert len(pools) == len(later) and all(len(pool) == 64 for pool in pools)
    for t, pool in zip(later, pools, strict=True):
        scores = [-mixed_value(p) for p in oracle.encoder.decode(pool)]
        assert t.params == oracle.encoder.decode(pool[[int(np.argmax(scores))]])[0]
        assert -mixed_value(t.params) == max(scores)
    random = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    random.optimize(lambda t: mixed_value(suggest(t, MIXED)), n_trials=10)
    assert all(a.params != b.params for a, b in zip(later, random.trials[4:], strict=True))


def test_local_search_scores_whole_batches() -> None:
    spy = Spy()
    run(coarse(MIXED, predictor=spy, exploration=0.0, pool_size=64), MIXED, 6)
    # per proposal: pool + incumbents' mutants, 3 hill-climb rounds, the proposal itself
    assert len(spy.predicts) == 2 * 5
    assert spy.predicts[0][0] > 64 and all(n >= 1 for n, _ in spy.predicts)


def test_plain_xgboost_regressor_and_an_unseeded_sampler_work() -> None:
    """Any fit/predict regressor; seed=None draws a seed every consumer accepts (Optuna's
    RandomSampler fallback, used for "extra", takes only 32-bit seeds)."""
    predictor = xgboost.XGBRegressor(n_estimators=10, max_depth=2, n_jobs=1, random_state=0)
    study = optuna.create_study(sampler=coarse(MIXED, predictor=predictor, seed=None))

    def objective(trial: optuna.Trial) -> float:
        return mixed_value(suggest(trial, MIXED)) + trial.suggest_float("extra", 0.0, 1.0)

    study.optimize(objective, n_trials=6)
    assert {t.system_attrs[SOURCE_ATTR] for t in study.trials[4:]} <= {"predicted", "explore"}
    assert all(0.0 <= t.params["extra"] <= 1.0 for t in study.trials)


def test_exploration_proposes_pool_members_without_the_predictor() -> None:
    spy = Spy()
    study = run(coarse(MIXED, predictor=spy, exploration=1.0), MIXED, 8)
    assert [t.system_attrs[SOURCE_ATTR] for t in study.trials[4:]] == ["explore"] * 4
    assert spy.fits == [] and spy.predicts == []


def test_unusable_trials_are_left_out_of_the_fit() -> None:
    spy = Spy()
    study = optuna.create_study(sampler=coarse(MIXED, predictor=spy, exploration=0.0))
    enc = Encoder(MIXED)
    rng = np.random.default_rng(0)
    good = enc.from_unit(rng.random((5, len(enc.names))))
    for p in good:
        study.enqueue_trial(p)
    study.optimize(lambda t: mixed_value(suggest(t, MIXED)), n_trials=5)
    outside = dict(good[0], x=9.0)  # outside the search space
    dists = {**MIXED, "x": Flt(-10, 10)}
    study.add_trial(optuna.create_trial(params=outside, distributions=dists, value=1.0))
    study.add_trial(
        optuna.create_trial(params=good[1] | {"x": 0.5}, distributions=MIXED, value=math.inf)
    )
    study.add_trial(optuna.create_trial(state=TrialState.FAIL))
    study.optimize(lambda t: mixed_value(suggest(t, MIXED)), n_trials=1)
    assert spy.fits == [(5, enc.width)]
    assert study.trials[-1].system_attrs[SOURCE_ATTR] == "predicted"


def test_running_and_waiting_trials_are_never_proposed_again() -> None:
    """Parallel workers: on a 16-point space, with waiting (enqueued) trials and many running
    ones, every proposal is new, in the Sobol phase and in the predicted phase."""
    space = {"a": Cat(["p", "q", "r", "s"]), "b": Int(0, 3)}
    study = optuna.create_study(sampler=coarse(space, exploration=0.0, pool_size=16))
    for a, b in [("p", 0), ("q", 1)]:
        study.enqueue_trial({"a": a, "b": b})
    held = {key({"a": "p", "b": 0}), key({"a": "q", "b": 1})}

    def running() -> optuna.Trial:
        """A new RUNNING trial (``study.ask`` would pop the waiting ones instead)."""
        return optuna.Trial(study, study._storage.create_new_trial(study._study_id))

    def propose() -> dict:
        frozen = study._storage.get_trial(running()._trial_id)
        return study.sampler.sample_relative(study, frozen, dict(space))

    for _ in range(3):  # startup: three running trials, params proposed but not yet suggested
        params = propose()
        assert key(params) not in held
        held.add(key(params))
    for _ in range(4):  # four completed trials: the predictor takes over
        trial = running()
        params = suggest(trial, space)
        assert key(params) not in held
        study.tell(trial, float(ord(params["a"]) + params["b"]))
        held.add(key(params))
    for _ in range(16 - len(held)):
        params = propose()
        assert study.trials[-1].system_attrs[SOURCE_ATTR] == "predicted"
        assert key(params) not in held
        held.add(key(params))
    assert len(held) == 16
    # The space is used up: a repeat, with a warning, rather than an error.
    assert key(propose()) in held
    assert [t.state for t in study.trials[:2]] == [TrialState.WAITING] * 2


def _simulated_workers(sampler: CoarseSampler, workers: int, n: int) -> list[dict]:
    """``workers`` trials kept running, the oldest completed first: what N equally fast
    workers do, without the timing of threads."""
    study = optuna.create_study(sampler=sampler)
    running: list[optuna.Trial] = []
    while len(study.trials) < n or running:
        while len(running) < workers and len(study.trials) < n:
            trial = study.ask()
            suggest(trial, MIXED)
            running.append(trial)
        trial = running.pop(0)
        study.tell(trial, mixed_value(trial.params))
    return [t.params for t in study.trials]


@pytest.mark.parametrize("model", MODELS[1:], ids=MODEL_IDS[1:])
@pytest.mark.parametrize("workers", [1, 4])
def test_same_seed_same_proposals_per_worker_count(model: dict, workers: int) -> None:
    """Per worker count, the proposals are a function of the seed and the order trials start
    and finish in; running trials enter as fantasies, so no two workers get one candidate."""

    def make() -> CoarseSampler:
        return coarse(MIXED, seed=4, constraint=mixed_constraint, **model)

    first = _simulated_workers(make(), workers, 14)
    assert first == _simulated_workers(make(), workers, 14)
    assert len({key(p) for p in first}) == 14
    assert all(is_feasible(mixed_constraint(p)) for p in first)


def test_threads_of_one_process_get_distinct_candidates() -> None:
    space = {"a": Int(0, 5), "b": Cat(["u", "v", "w", "x", "y", "z"])}
    study = optuna.create_study(sampler=coarse(space))

    def objective(trial: optuna.Trial) -> float:
        return suggest(trial, space)["a"] + 0.5 * ord(trial.params["b"])

    study.optimize(objective, n_trials=24, n_jobs=2)
    assert len({key(t.params) for t in study.trials}) == 24


def test_impossible_constraint_raises_with_tightness_without_hanging() -> None:
    """Bounded work, not a clock: the constraint is asked at most twice ``max_tries`` times
    (the shared startup scan, then the trial's own sequence) before the error."""
    calls: list[dict] = []

    def impossible(p: Mapping[str, Any]) -> list[float]:
        calls.append(dict(p))
        return [1.0]

    sampler = coarse(MIXED, constraint=impossible, max_tries=500, pool_size=100)
    study = optuna.create_study(sampler=sampler)
    with pytest.raises(
        InfeasibleConstraintError, match="0 of 500 quasi-random candidates satisfied"
    ):
        study.optimize(lambda t: mixed_value(suggest(t, MIXED)), n_trials=1)
    assert 500 <= len(calls) <= 2 * 500
    assert [t.state for t in study.trials] == [TrialState.FAIL]


def test_constraint_impossible_with_fixed_params_names_them() -> None:
    sampler = coarse(MIXED, constraint=mixed_constraint, max_tries=256, pool_size=64)
    study = optuna.create_study(sampler=sampler)
    study.enqueue_trial({"x": 4.0, "n": 20})  # x + n/4 > 0 whatever the rest
    with pytest.raises(InfeasibleConstraintError, match=r"fixed params \{'x': 4.0, 'n': 20\}"):
        study.optimize(lambda t: mixed_value(suggest(t, MIXED)), n_trials=1)


def test_multi_objective_is_refused_with_a_clear_message() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=coarse(MIXED))
    with pytest.raises(ValueError, match="single-objective"):
        study.optimize(lambda t: (t.suggest_float("x", -5, 5), 0.0), n_trials=1)
