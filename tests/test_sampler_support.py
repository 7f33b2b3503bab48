"""What the three samplers share: argument checks, the single-objective refusal, and the random
fallback (with its warning) for a parameter outside the sampler's space."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution

from jointnas.samplers import AdaptiveGeneticSampler, CoarseSampler, FeasibleSampler
from jointnas.samplers.feasible import Constraint, is_feasible
from jointnas.samplers.support import (
    RandomFallback,
    check_int,
    check_single_objective,
    is_int,
    is_real,
)

optuna.logging.set_verbosity(optuna.logging.ERROR)

SPACE = {"x": FloatDistribution(0.0, 1.0)}
LOGGER = "jointnas.samplers.support"


def test_int_and_real_checks() -> None:
    assert check_int("n", np.int64(3), 1) == 3 and type(check_int("n", 3, 1)) is int
    with pytest.raises(TypeError, match="n must be an int"):
        check_int("n", True, 0)
    with pytest.raises(TypeError, match="n must be an int"):
        check_int("n", 2.0, 0)
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        check_int("n", 0, 1)
    assert [is_int(v) for v in (1, np.int32(1), True, 1.0)] == [True, True, False, False]
    assert [is_real(v) for v in (1, 0.5, np.float32(2), float("nan"), False)] == [
        True,
        True,
        True,
        False,
        False,
    ]


def test_constraint_convention_is_importable_where_it_was() -> None:
    constraint: Constraint = lambda p: [p["x"] - 0.5]  # noqa: E731
    assert is_feasible(constraint({"x": 0.5})) and not is_feasible(constraint({"x": 0.6}))


def test_multi_objective_is_refused_naming_the_sampler_and_the_alternative() -> None:
    check_single_objective(optuna.create_study(), "S", "why")  # one objective: fine
    study = optuna.create_study(directions=["minimize", "minimize"])
    with pytest.raises(ValueError, match="S supports single-objective studies only: why; use"):
        check_single_objective(study, "S", "why")


def _fallback_warnings(caplog: pytest.LogCaptureFixture, sampler: optuna.samplers.BaseSampler):
    study = optuna.create_study(sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_float("x", 0.0, 1.0) + trial.suggest_float("other", 2.0, 3.0)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        study.optimize(objective, n_trials=3)
    assert all(2.0 <= t.params["other"] <= 3.0 for t in study.trials)  # sampled at random
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


@pytest.mark.parametrize(
    ("make", "count"),
    [
        (lambda: FeasibleSampler(search_space=SPACE, constraint=lambda p: [0.0], seed=0), 3),
        (lambda: CoarseSampler(search_space=SPACE, n_startup_trials=5, seed=0), 1),
        (lambda: AdaptiveGeneticSampler(search_space=SPACE, population_size=2, seed=0), 3),
    ],
)
def test_each_sampler_warns_about_a_parameter_outside_its_space(
    caplog: pytest.LogCaptureFixture, make, count: int
) -> None:
    sampler = make()
    messages = _fallback_warnings(caplog, sampler)
    assert len(messages) == count  # CoarseSampler warns once per name, the others per draw
    name = type(sampler).__name__
    assert all(m.startswith(f"{name}: parameter 'other'") for m in messages)
    assert "is outside the search space" in messages[0]


def test_fallback_names_a_changed_distribution_and_a_copy_warns_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fallback = RandomFallback(sampler="S", distributions=SPACE, seed=0, once=True)
    study = optuna.create_study()
    trial = study._storage.get_trial(study.ask()._trial_id)
    changed = FloatDistribution(0.0, 2.0)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(2):
            assert 0.0 <= fallback.sample_independent(study, trial, "x", changed) <= 2.0
        copy = pickle.loads(pickle.dumps(fallback))
        copy.sample_independent(study, trial, "x", changed)
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(messages) == 2  # once here, once in the copy (another process)
    assert all("'x'" in m and "does not match the search space" in m for m in messages)
