"""AdaptiveGeneticSampler: Optuna's sampler contract, constraints, determinism, storage-backed
state (resume), seeding from another study, predictor mode, and that it breeds from the best.
(Whether it beats random search is measured, over seeds, by
``benchmarks/bench_beats_random.py``.)"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import optuna
import pytest
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

from jointnas.errors import InfeasibleConstraintError
from jointnas.samplers.genetic import AdaptiveGeneticSampler
from jointnas.spaces.encoding import Encoder
from jointnas.testing.problems import FIVE_PARAMS, five_params_value

optuna.logging.set_verbosity(optuna.logging.ERROR)

CHILD = "AdaptiveGeneticSampler:child"
GENERATION = "AdaptiveGeneticSampler:generation"

MIXED = FIVE_PARAMS  # a cheap objective with a clear optimum
mixed_loss = five_params_value


def suggest_all(trial: optuna.trial.BaseTrial, space: Mapping[str, BaseDistribution]) -> dict:
    params = {}
    for name, d in space.items():
        if isinstance(d, CategoricalDistribution):
            params[name] = trial.suggest_categorical(name, d.choices)
        elif isinstance(d, IntDistribution):
            params[name] = trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
        else:
            params[name] = trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)
    return params


def run(study: optuna.Study, space: Mapping[str, BaseDistribution], n: int) -> None:
    study.optimize(lambda t: mixed_loss(suggest_all(t, space)), n_trials=n)


def proposals(study: optuna.Study) -> list[dict]:
    return [t.params for t in study.trials]


# -- Optuna's reusable sampler suites ------------------------------------------------------------
# All three suites apply; none is deselected. The sampler evolves one fixed, declared search
# space, so the fixture declares the space each test suggests: read from the test's
# parametrisation (distributions or suggest lambdas), else from this table. Tests that only call
# sample_independent (the fallback for parameters outside the space) get a space they never touch.
SUITE_SPACES: dict[str, dict[str, BaseDistribution]] = {
    "test_nan_objective_value": {"x": FloatDistribution(0.1, 0.2)},
    "test_partial_fixed_sampling": {
        "x": FloatDistribution(-1, 1),
        "y": IntDistribution(-1, 1),
        "z": FloatDistribution(-1, 1),
    },
    "test_sample_single_distribution": {
        "a": CategoricalDistribution([1]),
        "b": IntDistribution(low=1, high=1),
        "c": IntDistribution(low=1, high=1, log=True),
        "d": FloatDistribution(low=1.0, high=1.0),
        "e": FloatDistribution(low=1.0, high=1.0, log=True),
        "f": FloatDistribution(low=1.0, high=1.0, step=1.0),
    },
    # conditional parameters are not a fixed space: the GA evolves x, y/z fall back to random
    "test_conditional_parameter_objective": {"x": CategoricalDistribution([True, False])},
    "test_dynamic_range_objective": {"x": FloatDistribution(0, 10), "y": IntDistribution(0, 10)},
    "test_sample_relative_mixed": {"y": CategoricalDistribution([-1, -10, -100])},
    "test_sample_relative_categorical": {
        "x": CategoricalDistribution([1, 10, 100]),
        "y": CategoricalDistribution([-1, -10, -100]),
    },
    "test_trial_relative_params": {
        "x": FloatDistribution(-10, 10),
        "y": FloatDistribution(-10, 10),
    },
}


def _distributions_of(suggest: Callable[[optuna.Trial], Any]) -> dict[str, BaseDistribution]:
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    suggest(trial)
    return dict(trial.distributions)


def _suite_space(request: pytest.FixtureRequest) -> dict[str, BaseDistribution]:
    space = dict(SUITE_SPACES.get(request.node.originalname, {}))
    callspec = getattr(request.node, "callspec", None)
    for key, value in sorted(callspec.params.items() if callspec else []):
        if key in ("x_distribution", "y_distribution"):
            space[key[0]] = value
        elif key.startswith("suggest_method_"):
            space.update(_distributions_of(value))
    return space or {"unused": FloatDistribution(0.0, 1.0)}


class _Fixture:
    """The suites' ``sampler`` fixture (a class attribute, so it must be overridden in a class)."""

    @pytest.fixture
    def sampler(self, request: pytest.FixtureRequest) -> Callable[[], AdaptiveGeneticSampler]:
        space = _suite_space(request)
        return lambda: AdaptiveGeneticSampler(search_space=space, population_size=3, seed=0)


class TestOptunaBasicSuite(_Fixture, BasicSamplerTestCase):
    pass


class TestOptunaRelativeSuite(_Fixture, RelativeSamplerTestCase):
    pass


class TestOptunaSingleOnlySuite(_Fixture, SingleOnlySamplerTestCase):
    pass


# -- arguments ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"search_space": {}}, "search_space"),
        ({"search_space": {"x": "not a distribution"}}, "search_space"),
        ({"constraint": 3}, "constraint"),
        ({"predictor": object()}, "predictor"),
        ({"population_size": 1}, "population_size"),
        ({"population_size": 2.5}, "population_size"),
        ({"initial_from": ""}, "initial_from"),
        ({"mutation_prob": 0.0}, "mutation_prob"),
        ({"mutation_prob": 1.5}, "mutation_prob"),
        ({"sigma": 0.0}, "sigma"),
        ({"sigma": 0.9}, "sigma"),
        ({"sigma": float("nan")}, "sigma"),
        ({"crossover_prob": -0.1}, "crossover_prob"),
        ({"candidates_per_child": 0}, "candidates_per_child"),
        ({"seed": -1}, "seed"),
        ({"seed": True}, "seed"),
        ({"max_tries": 0}, "max_tries"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs: dict, name: str) -> None:
    args = {"search_space": MIXED, **kwargs}
    with pytest.raises(ValueError, match=name):
        AdaptiveGeneticSampler(**args)


@pytest.mark.parametrize("name", ["nope", "up"])
def test_unusable_initial_from_study_fails_naming_it(name: str) -> None:
    storage = optuna.storages.InMemoryStorage()
    optuna.create_study(storage=storage, study_name="up", direction="maximize")
    sampler = AdaptiveGeneticSampler(search_space=MIXED, initial_from=name, seed=0)
    with pytest.raises(ValueError, match=f"initial_from={name!r}"):
        run(optuna.create_study(storage=storage, sampler=sampler), MIXED, 1)


# -- behaviour ------------------------------------------------------------------------------------
def test_proposals_satisfy_the_constraint_and_do_not_repeat() -> None:
    space = {
        "x": FloatDistribution(0.0, 1.0),
        "y": FloatDistribution(0.0, 1.0),
        "n": IntDistribution(1, 16),
        "c": CategoricalDistribution(["a", "b"]),
    }

    def constraint(p: Mapping[str, Any]) -> list[float]:
        return [p["x"] + p["y"] - 0.8, p["n"] - 6.0]  # admits ~12% of the space

    sampler = AdaptiveGeneticSampler(
        search_space=space, constraint=constraint, population_size=6, seed=0
    )
    study = optuna.create_study(sampler=sampler)

    def objective(trial: optuna.Trial) -> float:  # best on the constraint's boundary
        p = suggest_all(trial, space)
        return -(p["x"] + p["y"] + p["n"] / 16 + (p["c"] == "b"))

    study.optimize(objective, n_trials=40)
    assert all(max(constraint(p)) <= 0 for p in proposals(study))
    keys = {tuple(sorted(p.items())) for p in proposals(study)}
    assert len(keys) == 40
    origins = [t.system_attrs[CHILD]["origin"] for t in study.trials]
    assert origins.count("random") == 6 and origins.count("offspring") == 34
    assert max(t.system_attrs[GENERATION] for t in study.trials) >= 5


def test_infeasible_constraint_raises_saying_how_tight() -> None:
    sampler = AdaptiveGeneticSampler(
        search_space=MIXED, constraint=lambda p: [1.0], max_tries=300, seed=0
    )
    with pytest.raises(InfeasibleConstraintError, match="300 draws"):
        run(optuna.create_study(sampler=sampler), MIXED, 1)


def test_same_seed_same_proposals_other_seed_others() -> None:
    def go(seed: int) -> list[dict]:
        study = optuna.create_study(
            sampler=AdaptiveGeneticSampler(search_space=MIXED, population_size=5, seed=seed)
        )
        run(study, MIXED, 25)
        return proposals(study)

    assert go(7) == go(7)
    assert go(7) != go(8)


def test_mixed_type_space_stays_valid_and_children_change_at_least_one_gene() -> None:
    space = {
        "i": IntDistribution(-3, 3),
        "i_step": IntDistribution(0, 12, step=4),
        "i_log": IntDistribution(1, 1000, log=True),
        "f": FloatDistribution(-1.0, 1.0),
        "f_log": FloatDistribution(1e-6, 1.0, log=True),
        "f_step": FloatDistribution(0.0, 1.0, step=0.25),
        "cat": CategoricalDistribution([None, "relu", 2.5, False]),
        "fixed": FloatDistribution(2.0, 2.0),
    }

    def objective(trial: optuna.Trial) -> float:
        p = suggest_all(trial, space)
        return abs(p["i"]) + p["i_step"] + math.log(p["i_log"]) + p["f"] ** 2 + (p["cat"] is None)

    sampler = AdaptiveGeneticSampler(search_space=space, population_size=5, seed=1)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=30)
    encoder = Encoder(space)
    by_id = {t._trial_id: t for t in study.trials}
    for t in study.trials:
        assert encoder.validate(t.params) == t.params  # in range, on grid, right Python types
        assert all(type(t.params[n]) is int for n in ("i", "i_step", "i_log"))
        record = t.system_attrs[CHILD]
        if record["origin"] == "offspring":
            parents = [by_id[i].params for i in record["parents"]]
            # every gene comes from a parent or was mutated; at least one was mutated
            assert all(t.params != p for p in parents)
    assert study.best_value < min(t.value for t in study.trials[:5])


def test_small_discrete_space_is_exhausted_before_any_repeat() -> None:
    space = {"a": CategoricalDistribution([0, 1, 2]), "b": IntDistribution(0, 2)}
    sampler = AdaptiveGeneticSampler(search_space=space, population_size=3, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: sum(suggest_all(t, space).values()), n_trials=12)
    keys = [tuple(sorted(p.items())) for p in proposals(study)]
    assert len(set(keys[:9])) == 9  # all 9 candidates before the first unavoidable repeat
    assert len(study.trials) == 12


def test_running_trials_are_not_proposed_again() -> None:
    space = {"a": CategoricalDistribution([0, 1])}
    study = optuna.create_study(
        sampler=AdaptiveGeneticSampler(search_space=space, population_size=2, seed=0)
    )
    first, second, third = (study.ask(space) for _ in range(3))  # none told: all RUNNING
    assert first.params != second.params
    assert third.params in (first.params, second.params)  # only 2 candidates: unavoidable


def test_maximize_keeps_the_best_as_parents() -> None:
    sampler = AdaptiveGeneticSampler(search_space=MIXED, population_size=4, seed=2)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda t: -mixed_loss(suggest_all(t, MIXED)), n_trials=24)
    best = [s["best_value"] for s in sampler.history(study)[1:]]
    assert best == sorted(best)  # elitist, and on the right side of the direction
    done = [t for t in study.trials if t.system_attrs[GENERATION] < 5]
    assert best[-1] == max(t.value for t in done)


# -- initial population ---------------------------------------------------------------------------
def test_initial_population_from_another_study() -> None:
    storage = optuna.storages.InMemoryStorage()
    coarse = optuna.create_study(
        storage=storage, study_name="coarse", sampler=optuna.samplers.RandomSampler(seed=0)
    )
    run(coarse, MIXED, 12)
    best8 = sorted(coarse.trials, key=lambda t: t.value)[:8]

    sampler = AdaptiveGeneticSampler(
        search_space=MIXED, population_size=8, initial_from="coarse", seed=0
    )
    fine = optuna.create_study(storage=storage, study_name="fine", sampler=sampler)
    run(fine, MIXED, 8)
    # 12 seeds fill the population: no random top-up, the first generation is bred from them
    assert [t.system_attrs[GENERATION] for t in fine.trials] == [1] * 8
    seed_ids = {t._trial_id for t in best8}
    for t in fine.trials:
        assert t.system_attrs[CHILD]["origin"] == "offspring"
        assert set(t.system_attrs[CHILD]["parents"]) <= seed_ids
    first = sampler.history(fine)[0]
    assert first["parents"] == 8 and first["best_value"] == best8[0].value
    coarse_keys = {tuple(sorted(t.params.items())) for t in coarse.trials}
    assert not coarse_keys & {tuple(sorted(p.items())) for p in proposals(fine)}


def test_few_seeds_of_the_same_study_are_topped_up_with_random_candidates() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    run(study, MIXED, 3)  # a short coarse stage in the same study
    study.sampler = AdaptiveGeneticSampler(search_space=MIXED, population_size=6, seed=0)
    run(study, MIXED, 9)
    ga = study.trials[3:]
    assert [t.system_attrs[GENERATION] for t in ga] == [0, 0, 0, 1, 1, 1, 1, 1, 1]
    assert [t.system_attrs[CHILD]["origin"] for t in ga[:3]] == ["random"] * 3
    parents = {i for t in ga[3:] for i in t.system_attrs[CHILD]["parents"]}
    # generation 1 is bred from the 3 seeds and the 3 random top-ups together
    assert parents <= {t._trial_id for t in study.trials[:6]}
    assert parents & {t._trial_id for t in study.trials[:3]}


# -- resume ----------------------------------------------------------------------------------------
def test_resume_continues_generation_and_sigma_from_storage(tmp_path) -> None:
    def sampler(sigma: float = 0.2) -> AdaptiveGeneticSampler:
        return AdaptiveGeneticSampler(search_space=MIXED, population_size=4, seed=3, sigma=sigma)

    url = f"sqlite:///{tmp_path}/ga.db"
    first = optuna.create_study(storage=url, study_name="resumed", sampler=sampler())
    run(first, MIXED, 12)
    before = sampler().history(first)
    # a new process: new study object, new sampler; even another sigma argument does not reset
    # the adapted state, which lives in the storage
    again = optuna.load_study(study_name="resumed", storage=url, sampler=sampler(sigma=0.45))
    run(again, MIXED, 12)
    after = sampler().history(again)

    whole = optuna.create_study(sampler=sampler())  # uninterrupted, in memory
    run(whole, MIXED, 24)
    assert proposals(again) == proposals(whole)
    assert after[: len(before)] == before
    assert after == sampler().history(whole)
    generations = [t.system_attrs[GENERATION] for t in again.trials]
    assert generations == sorted(generations) and generations[-1] == 5
    for prev, state in itertools.pairwise(after):  # the 1/5th success rule, chained
        rate, sigma = state["success_rate"], prev["sigma"]
        if rate is not None and rate > 0.2:
            sigma *= 1.22
        elif rate is not None and rate < 0.2:
            sigma /= 1.22
        assert state["sigma"] == pytest.approx(min(max(sigma, 0.01), 0.5))
    assert len({s["sigma"] for s in after}) > 1  # it did adapt


# -- predictor mode --------------------------------------------------------------------------------
class OraclePredictor:
    """Predicts the true objective from encoded rows; refuses to fit on fewer than 8 points
    (as a real predictor does) and counts calls."""

    def __init__(self, space: Mapping[str, BaseDistribution]) -> None:
        self.encoder = Encoder(space)
        self.fits: list[int] = []
        self.predicts: list[int] = []

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        if len(y) < 8:
            raise ValueError("need at least 8 points")
        assert X.shape == (len(y), self.encoder.width)
        self.fits.append(len(y))

    def predict(self, X: np.ndarray) -> np.ndarray:
        self.predicts.append(len(X))
        return np.array([mixed_loss(p) for p in self.encoder.decode(X)])


def test_predictor_scores_many_children_in_one_call_per_generation() -> None:
    predictor = OraclePredictor(MIXED)
    sampler = AdaptiveGeneticSampler(
        search_space=MIXED, predictor=predictor, population_size=4, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    run(study, MIXED, 20)  # generations 0..4
    # generation 1 has 4 points (fit refused: bred without it); generations 2, 3, 4 use it
    assert predictor.fits == [8, 12, 16]
    assert predictor.predicts == [80, 80, 80]  # 20 candidates per child, one call each
    origins = [t.system_attrs[CHILD]["origin"] for t in study.trials]
    assert origins == ["random"] * 4 + ["offspring"] * 4 + ["predictor"] * 12
    for t in study.trials[8:]:
        assert t.system_attrs[CHILD]["predicted"] == pytest.approx(t.value)
    # the best-predicted come first within a generation
    for g in (2, 3, 4):
        values = [t.value for t in study.trials if t.system_attrs[GENERATION] == g]
        assert values == sorted(values)
    keys = {tuple(sorted(p.items())) for p in proposals(study)}
    assert len(keys) == 20


def test_xgboost_predictor_drives_the_search() -> None:
    from jointnas.predictors import XGBoostPredictor
    from jointnas.spaces.base import DistributionSpace

    predictor = XGBoostPredictor(space=DistributionSpace(MIXED), n_estimators=30, n_jobs=1)
    sampler = AdaptiveGeneticSampler(
        search_space=MIXED,
        predictor=predictor,
        population_size=5,
        constraint=lambda p: [p["n"] - 32],
        seed=0,
    )
    study = optuna.create_study(sampler=sampler)
    run(study, MIXED, 15)
    origins = [t.system_attrs[CHILD]["origin"] for t in study.trials]
    assert origins.count("predictor") == 10
    assert all(p["n"] <= 32 for p in proposals(study))


# -- it breeds from the best ---------------------------------------------------------------------
def test_after_the_random_generation_children_are_bred_from_the_best_so_far() -> None:
    """Selection, not chance: after the first (random) population, every child's parents are
    among the best ``population_size`` trials of the earlier generations (parents and children
    compete), each child inherits genes from them, and no child is what a RandomSampler with
    the same seed draws."""
    sampler = AdaptiveGeneticSampler(search_space=MIXED, population_size=6, seed=0)
    study = optuna.create_study(sampler=sampler)
    run(study, MIXED, 36)
    origins = [t.system_attrs[CHILD]["origin"] for t in study.trials]
    assert origins == ["random"] * 6 + ["offspring"] * 30
    by_id = {t._trial_id: t for t in study.trials}
    for t in study.trials[6:]:
        generation = t.system_attrs[GENERATION]
        earlier = [u for u in study.trials if u.system_attrs[GENERATION] < generation]
        best = {u._trial_id for u in sorted(earlier, key=lambda u: u.value)[:6]}
        parents = t.system_attrs[CHILD]["parents"]
        assert parents and set(parents) <= best
        inherited = [any(t.params[k] == by_id[i].params[k] for i in parents) for k in MIXED]
        assert sum(inherited) >= 2, (t.number, inherited)
    random = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    run(random, MIXED, 36)
    assert all(a.params != b.params for a, b in zip(study.trials, random.trials, strict=True))


def test_failed_trials_are_not_parents_and_do_not_stall_a_generation() -> None:
    sampler = AdaptiveGeneticSampler(search_space=MIXED, population_size=4, seed=0)
    study = optuna.create_study(sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        p = suggest_all(trial, MIXED)
        if trial.number % 3 == 0:
            raise RuntimeError("diverged")
        return mixed_loss(p)

    study.optimize(objective, n_trials=24, catch=(RuntimeError,))
    failed = {t._trial_id for t in study.trials if t.state == TrialState.FAIL}
    assert failed
    parents = {i for t in study.trials for i in t.system_attrs[CHILD]["parents"]}
    assert parents and not parents & failed
    assert max(t.system_attrs[GENERATION] for t in study.trials) >= 3


# -- without search_space: the space of the first completed trial ------------------------------
class _Inferred:
    @pytest.fixture
    def sampler(self) -> Callable[[], AdaptiveGeneticSampler]:
        return lambda: AdaptiveGeneticSampler(population_size=3, seed=0)


class TestOptunaBasicSuiteInferred(_Inferred, BasicSamplerTestCase):
    pass


class TestOptunaRelativeSuiteInferred(_Inferred, RelativeSamplerTestCase):
    pass


class TestOptunaSingleOnlySuiteInferred(_Inferred, SingleOnlySamplerTestCase):
    pass


def test_without_search_space_breeds_in_the_first_trials_space_under_the_constraint() -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -2.0, 2.0)
        n = trial.suggest_int("n", 0, 6)
        return (x - 0.5) ** 2 + (n - 2) ** 2

    sampler = AdaptiveGeneticSampler(
        population_size=4, seed=0, constraint=lambda p: [p["x"] + p["n"] - 4.0]
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=20)
    bred = [t for t in study.trials if t.number > 0]
    assert all(t.params["x"] + t.params["n"] <= 4.0 for t in bred)
    assert [h["generation"] for h in sampler.history(study)][:3] == [0, 1, 2]
