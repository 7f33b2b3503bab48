"""The shared genetic operators: selection, crossover, mutation, the 1/5th rule, and that the
sampler and the fine search both run on them."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from jointnas.constraints import Limits, cost_feasibility
from jointnas.runs.search import fine_search
from jointnas.samplers import AdaptiveGeneticSampler, operators
from jointnas.samplers.operators import (
    Genes,
    breed,
    one_fifth_rule,
    success_rate,
    tournament,
)
from jointnas.spaces.encoding import Encoder
from jointnas.spaces.fbnetv3 import FBNetV3Space

optuna.logging.set_verbosity(optuna.logging.ERROR)

MIXED: dict[str, BaseDistribution] = {
    "i": IntDistribution(-3, 3),
    "i_step": IntDistribution(0, 12, step=4),
    "i_log": IntDistribution(1, 1000, log=True),
    "f": FloatDistribution(-1.0, 1.0),
    "f_log": FloatDistribution(1e-6, 1.0, log=True),
    "f_step": FloatDistribution(0.0, 1.0, step=0.25),
    "cat": CategoricalDistribution([None, "relu", 2.5, False]),
    "fixed": FloatDistribution(2.0, 2.0),
}


def population(space: dict[str, BaseDistribution], n: int, seed: int) -> np.ndarray:
    encoder = Encoder(space)
    return encoder.encode(encoder.from_unit(np.random.default_rng(seed).random((n, len(space)))))


# -- the 1/5th success rule -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sigma", "success", "expected"),
    [
        (0.1, 0.3, 0.1 * 1.22),  # more than a fifth succeeded: grow
        (0.1, 0.1, 0.1 / 1.22),  # fewer: shrink
        (0.1, 0.2, 0.1),  # exactly a fifth: keep
        (0.1, None, 0.1),  # no child judged: keep
        (0.45, 1.0, 0.5),  # clamped above
        (0.011, 0.0, 0.01),  # clamped below
    ],
)
def test_one_fifth_rule(sigma: float, success: float | None, expected: float) -> None:
    assert one_fifth_rule(sigma, success) == pytest.approx(expected)


def test_success_is_strictly_beating_the_better_parent() -> None:
    assert success_rate([1.0, 2.0, 3.0], [1.0, 1.0, 4.0]) == pytest.approx(1 / 3)
    assert success_rate([], []) is None


# -- selection -----------------------------------------------------------------------------------
def test_tournament_competitors_are_distinct_and_the_fitter_wins() -> None:
    rng = np.random.default_rng(0)
    fitness = np.array([0.0, 1.0])
    first = tournament(fitness, 500, rng)
    assert (first == 1).all()  # two distinct competitors: always both parents, 1 is fitter
    second = tournament(fitness, 500, rng, exclude=first)
    assert (second == 0).all()  # the other parent: crossover mixes two individuals
    lone = tournament(np.array([3.0]), 5, rng, exclude=np.zeros(5, dtype=np.int64))
    assert (lone == 0).all()


def test_tournament_ties_are_a_coin_flip() -> None:
    wins = tournament(np.zeros(4), 40_000, np.random.default_rng(1))
    counts = np.bincount(wins, minlength=4)
    assert np.all(np.abs(counts / 40_000 - 0.25) < 0.02), counts


# -- crossover and mutation ------------------------------------------------------------------------
def test_children_inherit_or_change_every_gene_and_stay_valid() -> None:
    encoder = Encoder(MIXED)
    genes = Genes.of(encoder)
    X = population(MIXED, 12, 0)
    fitness = np.random.default_rng(1).random(12)
    kids = breed(
        X,
        fitness,
        2000,
        np.random.default_rng(2),
        genes=genes,
        sigma=0.01,  # small against every grid: discrete genes rely on the grid step
        mutation_prob=0.2,
        crossover_prob=0.5,
    )
    np.testing.assert_allclose(encoder.snap(kids.rows), kids.rows, atol=1e-12)  # on the grid
    crossover = np.where(kids.from_second[:, genes.of_column], X[kids.second], X[kids.first])
    assert kids.crossed.mean() == pytest.approx(0.5, abs=0.05)
    assert (kids.second[kids.crossed] != kids.first[kids.crossed]).all()
    assert not kids.from_second[~kids.crossed].any()
    assert kids.mutated.any(axis=1).all()  # never a plain copy
    assert not kids.mutated[:, encoder.names.index("fixed")].any()
    for g, name in enumerate(encoder.names):
        cols = encoder.feature_mask([name])
        same = (kids.rows[:, cols] == crossover[:, cols]).all(axis=1)
        assert same[~kids.mutated[:, g]].all(), name  # inherited exactly
        changed = ~same[kids.mutated[:, g]]
        if name == "f" or name == "f_log":  # continuous: only a clipped step can stay put
            at_bound = np.isin(crossover[kids.mutated[:, g]][:, cols][:, 0], (0.0, 1.0))
            assert (changed | at_bound).all(), name
        elif name != "fixed":
            assert changed.all(), name  # a mutated discrete or categorical gene changes


def test_mutation_changes_about_one_gene_per_child() -> None:
    space = {f"x{k}": FloatDistribution(0.0, 1.0) for k in range(10)}
    genes = Genes.of(Encoder(space))
    kids = breed(
        population(space, 8, 0),
        np.zeros(8),
        20_000,
        np.random.default_rng(3),
        genes=genes,
        sigma=0.1,
        mutation_prob=genes.default_mutation_prob(),
        crossover_prob=1.0,
    )
    per_child = kids.mutated.sum(axis=1)
    # each of 10 genes with p = 1/10, plus one forced where none was drawn (P = 0.9^10)
    assert per_child.min() == 1
    assert per_child.mean() == pytest.approx(1 + 0.9**10, abs=0.03)


def test_numeric_steps_are_clipped_at_the_bounds() -> None:
    space = {"x": FloatDistribution(0.0, 1.0)}
    genes = Genes.of(Encoder(space))
    kids = breed(
        np.array([[0.9], [0.9]]),
        np.zeros(2),
        20_000,
        np.random.default_rng(4),
        genes=genes,
        sigma=0.2,
        mutation_prob=1.0,
        crossover_prob=0.0,
    )
    x = kids.rows[:, 0]
    assert (x >= 0.0).all() and (x <= 1.0).all()
    # every overshoot lands on the bound: P(0.9 + 0.2 z > 1) = P(z > 0.5)
    expected = 0.5 * math.erfc(0.5 / math.sqrt(2))
    assert np.mean(x == 1.0) == pytest.approx(expected, abs=0.015)


def test_a_step_that_snaps_back_moves_one_grid_point() -> None:
    space = {"n": IntDistribution(0, 10, step=2)}
    encoder = Encoder(space)
    X = encoder.encode([{"n": 4}, {"n": 10}])
    kids = breed(
        X,
        np.zeros(2),  # equally fit: both parents get children
        400,
        np.random.default_rng(5),
        genes=Genes.of(encoder),
        sigma=0.01,
        mutation_prob=1.0,
        crossover_prob=0.0,
    )
    parent = np.array([4, 10])[kids.first]
    child = np.array([p["n"] for p in encoder.decode(kids.rows)])
    assert (np.abs(child - parent) == 2).all()  # one grid point, never the same value
    assert set(child[parent == 10]) == {8}  # the other way at the upper bound
    assert set(child[parent == 4]) == {2, 6}


def test_categorical_mutation_switches_to_another_choice() -> None:
    space = {"c": CategoricalDistribution(["a", "b", "c"])}
    encoder = Encoder(space)
    kids = breed(
        encoder.encode([{"c": "a"}, {"c": "a"}]),
        np.zeros(2),
        3000,
        np.random.default_rng(6),
        genes=Genes.of(encoder),
        sigma=0.1,
        mutation_prob=1.0,
        crossover_prob=0.0,
    )
    choices = [p["c"] for p in encoder.decode(kids.rows)]
    assert "a" not in choices
    assert choices.count("b") / 3000 == pytest.approx(0.5, abs=0.05)


# -- one engine -----------------------------------------------------------------------------------
def assert_follows_the_rule(sigmas: list[float], successes: list[float | None]) -> None:
    """Each sigma is the (patched) shared rule applied to the one before; some changed."""
    for before, after, success in zip(sigmas[:-1], sigmas[1:], successes, strict=True):
        assert after == pytest.approx(one_fifth_rule(before, success))
    assert len(set(sigmas)) > 1


def test_the_sampler_and_the_fine_search_share_the_one_fifth_rule(monkeypatch) -> None:
    monkeypatch.setattr(operators, "SIGMA_FACTOR", 1.5)  # a private copy of the rule would not
    space = FBNetV3Space()
    feasible = cost_feasibility(space, Limits(mflops=1.0), num_classes=10, in_channels=1)
    weights = np.random.default_rng(7).random(space.encoder.width)

    class Linear:
        def predict(self, X: np.ndarray) -> np.ndarray:
            return X @ weights

    result = fine_search(
        space, Linear(), feasible=feasible, population=16, children=256, generations=6
    )
    assert_follows_the_rule(
        [0.15] + [h["sigma"] for h in result.history], [h["success"] for h in result.history]
    )

    dists = {"x": FloatDistribution(-5, 5), "y": FloatDistribution(-5, 5)}
    sampler = AdaptiveGeneticSampler(search_space=dists, population_size=4, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(
        lambda t: (t.suggest_float("x", -5, 5) - 1) ** 2 + t.suggest_float("y", -5, 5) ** 2,
        n_trials=28,
    )
    states = sampler.history(study)
    assert_follows_the_rule([s["sigma"] for s in states], [s["success_rate"] for s in states[1:]])
