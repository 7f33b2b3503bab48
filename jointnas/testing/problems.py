"""Cheap made-up objectives with known optima, for sampler tests and benchmarks (like
``optuna.testing.objectives``): the tests check what a sampler does on them, and
``benchmarks/bench_beats_random.py`` measures how well, on the same problems.

Each is minimised and is 0 at its optimum; each space is a plain dict of Optuna distributions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

#: float, log float, stepped int and a categorical of mixed Python types
MIXED_TYPES: dict[str, BaseDistribution] = {
    "x": FloatDistribution(-5.0, 5.0),
    "lr": FloatDistribution(1e-4, 1.0, log=True),
    "n": IntDistribution(0, 20, step=2),
    "act": CategoricalDistribution(["relu", "tanh", None, 3, 2.5, True]),
}
PENALTY = {"relu": 0.0, "tanh": 1.0, None: 2.0, 3: 1.5, 2.5: 1.0, True: 3.0}


def mixed_types_value(p: Mapping[str, Any]) -> float:
    """Minimum 0 at x=1.3, lr=1e-2, n=12, act='relu'."""
    return (
        (p["x"] - 1.3) ** 2
        + (math.log10(p["lr"]) + 2.0) ** 2
        + ((p["n"] - 12) / 4.0) ** 2
        + PENALTY[p["act"]]
    )


#: two floats, a log int, a categorical and a log float
FIVE_PARAMS: dict[str, BaseDistribution] = {
    "x": FloatDistribution(-5.0, 5.0),
    "y": FloatDistribution(-5.0, 5.0),
    "n": IntDistribution(1, 64, log=True),
    "c": CategoricalDistribution(["a", "b", "c"]),
    "lr": FloatDistribution(1e-4, 1.0, log=True),
}


def five_params_value(p: Mapping[str, Any]) -> float:
    """Minimum 0 at x=1, y=-2, n=8, c='b', lr=1e-2."""
    return (
        (p["x"] - 1) ** 2
        + (p["y"] + 2) ** 2
        + (math.log(p["n"]) - math.log(8)) ** 2
        + (p["c"] != "b")
        + (math.log10(p["lr"]) + 2) ** 2
    )


#: a float, an int and a categorical
THREE_PARAMS: dict[str, BaseDistribution] = {
    "x": FloatDistribution(-5.0, 5.0),
    "n": IntDistribution(0, 10),
    "c": CategoricalDistribution(["a", "b", "c"]),
}


def three_params_value(p: Mapping[str, Any]) -> float:
    """Minimum 0 at x=1, n=3, c='b'."""
    return (p["x"] - 1) ** 2 + (p["n"] - 3) ** 2 + (p["c"] != "b")
