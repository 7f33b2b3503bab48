"""Problem definitions for ``bench_sampler_suites.py``: external suites nobody here wrote.

A ``Problem`` is an Optuna search space (name -> distribution), an objective ``params -> float``
(minimised), an optional cheap known constraint ``params -> list[float]`` (feasible when every
value is <= 0, Optuna's convention) and a ``close`` that frees what the objective holds.
``build(name)`` makes a fresh one per run: COCO problems keep state, so no run shares one.

- ``bbob-mixint_fFFF_dDD``: COCO's mixed-integer BBOB, instance 1. The first
  ``number_of_integer_variables`` coordinates are integers (``IntDistribution`` over COCO's
  bounds), the rest floats; unconstrained.
- ``bbob-constrained_fFFF_dDD``: COCO's constrained BBOB, instance 1, all floats; the
  constraint is ``problem.constraint(x)`` (a few microseconds a call).
- ``sklearn_svc_wine``, ``sklearn_mlp_breast_cancer``, ``sklearn_hgb_digits``: 1 - accuracy of a
  scikit-learn model with fixed data splits and model seeds (so the objective is deterministic),
  each under a cheap constraint on the params (a model-size or complexity budget).
- ``nas-table_fbnetv3`` and ``nas-table_fbnetv3-1mflops``: a tabular NAS benchmark of real
  trainings, the 301 recorded FBNetV3 (architecture, recipe) candidates of
  ``benchmarks/data/table.csv`` (MNIST-5k, 2 epochs each, ``record_table.py``), searched in
  their joint space (16 architecture + 8 recipe parameters, categorical, integer, continuous).
  The objective is 1 - the recorded accuracy of the table's candidate nearest to the proposal
  (squared distance of encoded rows: a changed choice counts 2, a numeric gap its square on
  [0, 1]), so it is piecewise constant and every value is a real training. The ``-1mflops``
  variant adds the analytic cost limit of 1 MFLOPs (a cheap known constraint on the proposal)
  and looks up its nearest candidate among the 127 recorded under that limit.

This module sets the BLAS/OpenMP thread counts to 1 before anything loads them (import it before
numpy), and imports numpy, cocoex and scikit-learn lazily.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

SUITES = ("bbob-mixint", "bbob-constrained", "sklearn", "nas-table")
# bbob-mixint: sphere, separable Rastrigin, step ellipsoid, rotated ellipsoid, rotated Rastrigin,
# Gallagher 101 peaks (smooth, multimodal, plateaus, ill-conditioned, rugged, random peaks).
MIXINT_FUNCTIONS = (1, 3, 7, 10, 15, 21)
MIXINT_DIMS = (5, 10)
# bbob-constrained (9 objectives x 6 constraint counts, f = 6 * (objective - 1) + k): sphere/3,
# separable ellipsoid/3, rotated ellipsoid/3, discus/9, bent cigar/9, rotated Rastrigin/3
# constraints; all have >= 4% of the box feasible in 5-D (many others have < 0.1%).
CONSTRAINED_FUNCTIONS = (2, 8, 20, 27, 33, 50)
CONSTRAINED_DIMS = (5,)
SKLEARN = ("sklearn_svc_wine", "sklearn_mlp_breast_cancer", "sklearn_hgb_digits")
NAS_TABLE = ("nas-table_fbnetv3", "nas-table_fbnetv3-1mflops")


@dataclass
class Problem:
    name: str
    suite: str
    space: dict[str, Any]
    objective: Callable[[dict[str, Any]], float]
    constraint: Callable[[dict[str, Any]], list[float]] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    close: Callable[[], None] = lambda: None

    @property
    def continuous(self) -> bool:
        from optuna.distributions import FloatDistribution

        return all(isinstance(d, FloatDistribution) for d in self.space.values())

    @property
    def numeric(self) -> bool:
        """No categorical parameter (AutoSampler's rule then picks GPSampler below 250)."""
        from optuna.distributions import CategoricalDistribution

        return not any(isinstance(d, CategoricalDistribution) for d in self.space.values())


def coco_name(suite: str, function: int, dim: int) -> str:
    return f"{suite}_f{function:03d}_d{dim:02d}"


def default_names(suite: str, functions=(), dims=()) -> list[str]:
    """The problems of ``suite`` (COCO ones: every function x dimension)."""
    if suite == "sklearn":
        return list(SKLEARN)
    if suite == "nas-table":
        return list(NAS_TABLE)
    fs, ds = {
        "bbob-mixint": (MIXINT_FUNCTIONS, MIXINT_DIMS),
        "bbob-constrained": (CONSTRAINED_FUNCTIONS, CONSTRAINED_DIMS),
    }[suite]
    return [coco_name(suite, f, d) for d in dims or ds for f in functions or fs]


def expand(spec: str, choices: dict[str, tuple[list[int], list[int]]]) -> list[str]:
    """Problem names of a comma list of suites and/or names; ``choices``: suite ->
    (functions, dimensions) to use instead of the defaults."""
    names: list[str] = []
    for item in [p for p in spec.split(",") if p]:
        if item in SUITES:
            names += default_names(item, *choices.get(item, ((), ())))
        else:
            suite_of(item)  # raises for an unknown name
            names.append(item)
    return list(dict.fromkeys(names))


def suite_of(name: str) -> str:
    for suite in SUITES:
        if name.startswith(suite + "_"):
            return suite
    raise ValueError(f"unknown problem {name!r}")


def build(name: str) -> Problem:
    suite = suite_of(name)
    if suite == "sklearn":
        return SKLEARN_BUILDERS[name]()
    if suite == "nas-table":
        return _nas_table(name)
    _, f, d = name.rsplit("_", 2)
    return _coco(suite, int(f[1:]), int(d[1:]))


def _coco(suite_name: str, function: int, dim: int) -> Problem:
    import cocoex
    import numpy as np
    from optuna.distributions import FloatDistribution, IntDistribution

    suite = cocoex.Suite(suite_name, "", f"dimensions:{dim} instance_indices:1")
    problem = suite.get_problem_by_function_dimension_instance(function, dim, 1)
    n_int = int(problem.number_of_integer_variables)
    names = [f"x{i}" for i in range(dim)]
    space: dict[str, Any] = {}
    for i, (lo, hi) in enumerate(zip(problem.lower_bounds, problem.upper_bounds, strict=True)):
        space[names[i]] = (
            IntDistribution(int(lo), int(hi)) if i < n_int else FloatDistribution(lo, hi)
        )

    def vector(p: dict[str, Any]) -> np.ndarray:
        return np.array([p[n] for n in names], dtype=float)

    def objective(p: dict[str, Any]) -> float:
        return float(problem(vector(p)))

    constraint = None
    if problem.number_of_constraints:

        def constraint(p: dict[str, Any]) -> list[float]:
            return [float(v) for v in problem.constraint(vector(p))]

    held = [suite, problem]

    def close() -> None:
        if held:
            held.pop().free()
            held.clear()  # the suite goes with its last reference

    info = {
        "coco_id": problem.id,
        "integer_variables": n_int,
        "constraints": int(problem.number_of_constraints),
    }
    return Problem(
        coco_name(suite_name, function, dim), suite_name, space, objective, constraint, info, close
    )


def _cv_error(model, x, y, folds: int) -> float:
    """1 - mean accuracy over a fixed stratified split (seed 0): deterministic."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return float(1.0 - cross_val_score(model, x, y, cv=cv, n_jobs=1).mean())


def _svc_wine() -> Problem:
    """RBF/poly/sigmoid SVC on wine (178 x 13), 5-fold CV; ``C * gamma <= 3``."""
    import math

    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from sklearn.datasets import load_wine
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    x, y = load_wine(return_X_y=True)
    space = {
        "C": FloatDistribution(1e-2, 1e3, log=True),
        "gamma": FloatDistribution(1e-4, 1e1, log=True),
        "kernel": CategoricalDistribution(("rbf", "poly", "sigmoid")),
    }

    def objective(p: dict[str, Any]) -> float:
        svc = SVC(C=p["C"], gamma=p["gamma"], kernel=p["kernel"], max_iter=100_000)
        return _cv_error(make_pipeline(StandardScaler(), svc), x, y, 5)

    def constraint(p: dict[str, Any]) -> list[float]:
        return [math.log10(p["C"] * p["gamma"]) - math.log10(3.0)]

    return Problem(
        "sklearn_svc_wine",
        "sklearn",
        space,
        objective,
        constraint,
        {"data": "wine 178x13", "eval": "5-fold CV"},
    )


MLP_MAX_WEIGHTS = 2500


def _mlp_weights(p: dict[str, Any], n_in: int = 30) -> int:
    u, n = p["hidden_units"], p["layers"]
    return n_in * u + (n - 1) * u * u + u + n * u + 1  # weights and biases, one output unit


def _mlp_breast_cancer() -> Problem:
    """MLP on breast_cancer (569 x 30), 3-fold CV, 30 epochs of Adam; <= 2,500 weights."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from sklearn.datasets import load_breast_cancer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True)
    space = {
        "hidden_units": IntDistribution(4, 64, log=True),
        "layers": IntDistribution(1, 3),
        "alpha": FloatDistribution(1e-6, 1.0, log=True),
        "learning_rate_init": FloatDistribution(1e-4, 1e-1, log=True),
        "activation": CategoricalDistribution(("relu", "tanh", "logistic")),
    }

    def objective(p: dict[str, Any]) -> float:
        mlp = MLPClassifier(
            hidden_layer_sizes=(p["hidden_units"],) * p["layers"],
            activation=p["activation"],
            alpha=p["alpha"],
            learning_rate_init=p["learning_rate_init"],
            max_iter=30,
            random_state=0,
        )
        return _cv_error(make_pipeline(StandardScaler(), mlp), x, y, 3)

    def constraint(p: dict[str, Any]) -> list[float]:
        return [float(_mlp_weights(p) - MLP_MAX_WEIGHTS)]

    return Problem(
        "sklearn_mlp_breast_cancer",
        "sklearn",
        space,
        objective,
        constraint,
        {"data": "breast_cancer 569x30", "eval": "3-fold CV", "max_weights": MLP_MAX_WEIGHTS},
    )


HGB_MAX_LEAVES = 240


def _hgb_digits() -> Problem:
    """HistGradientBoosting on 600 digits (stratified subsample), 400/200 held-out split;
    ``max_iter * max_leaf_nodes <= 240`` leaves per class."""
    from optuna.distributions import FloatDistribution, IntDistribution
    from sklearn.datasets import load_digits
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x, _, y, _ = train_test_split(x, y, train_size=600, stratify=y, random_state=0)
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=200, stratify=y, random_state=0)
    space = {
        "learning_rate": FloatDistribution(0.01, 1.0, log=True),
        "max_iter": IntDistribution(3, 20),
        "max_leaf_nodes": IntDistribution(2, 24, log=True),
        "min_samples_leaf": IntDistribution(2, 64, log=True),
        "l2_regularization": FloatDistribution(1e-6, 10.0, log=True),
        "max_features": FloatDistribution(0.2, 1.0),
    }

    def objective(p: dict[str, Any]) -> float:
        model = HistGradientBoostingClassifier(**p, early_stopping=False, random_state=0)
        return float(1.0 - model.fit(x_tr, y_tr).score(x_va, y_va))

    def constraint(p: dict[str, Any]) -> list[float]:
        return [float(p["max_iter"] * p["max_leaf_nodes"] - HGB_MAX_LEAVES)]

    return Problem(
        "sklearn_hgb_digits",
        "sklearn",
        space,
        objective,
        constraint,
        {
            "data": "digits 600x64 subsample",
            "eval": "400/200 held out",
            "max_leaves": HGB_MAX_LEAVES,
        },
    )


SKLEARN_BUILDERS: dict[str, Callable[[], Problem]] = {
    "sklearn_svc_wine": _svc_wine,
    "sklearn_mlp_breast_cancer": _mlp_breast_cancer,
    "sklearn_hgb_digits": _hgb_digits,
}


TABLE = Path(__file__).resolve().parent / "data" / "table.csv"
TABLE_MFLOPS = 1.0


def _nas_table(name: str) -> Problem:
    """The recorded FBNetV3 table as a tabular benchmark (see the module docstring)."""
    import numpy as np
    import pandas as pd

    from jointnas.constraints import Limits
    from jointnas.spaces.fbnetv3 import FBNetV3Space
    from jointnas.spaces.nets.cost import cost
    from jointnas.spaces.recipe_axes import before_augment_axis

    with before_augment_axis():  # the table was recorded before the augment axis existed
        space = FBNetV3Space()
    enc = space.encoder
    table = pd.read_csv(TABLE, comment="#")
    limited = name.endswith("-1mflops")
    if limited:
        table = table[table["mflops"] <= TABLE_MFLOPS]
    rows = enc.encode(
        [{n: _native(table[n].iloc[i]) for n in enc.names} for i in range(len(table))]
    )
    errors = 1.0 - table["acc"].to_numpy(float)
    limits = Limits(mflops=TABLE_MFLOPS)

    def objective(p: dict[str, Any]) -> float:
        gap = ((rows - enc.encode([p])[0]) ** 2).sum(axis=1)
        return float(errors[int(np.argmin(gap))])

    def constraint(p: dict[str, Any]) -> list[float]:
        return list(limits.values(cost(space.decode(p).arch, num_classes=10, in_channels=1)))

    info = {"candidates": len(table), "mflops_limit": TABLE_MFLOPS if limited else None}
    return Problem(
        name,
        "nas-table",
        dict(space.distributions),
        objective,
        constraint if limited else None,
        info,
    )


def _native(value: Any) -> Any:
    """A CSV cell as the space's choice type (numpy scalars and 'True' strings are not)."""
    if isinstance(value, str) and value in ("True", "False"):
        return value == "True"
    if hasattr(value, "item"):
        value = value.item()
    return value
