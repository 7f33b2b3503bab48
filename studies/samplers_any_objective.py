"""jointnas's samplers on an objective that is not NAS: tuning a scikit-learn model.

``CoarseSampler`` (FBNetV3's predictor-ranked coarse search) and ``AdaptiveGeneticSampler``
(its adaptive genetic search) work on any fixed Optuna search space under any cheap constraint.
Here they tune a ``HistGradientBoostingClassifier`` on scikit-learn's 8x8 digits over a mixed
space (log floats, ints, a float, a categorical) under a model-size budget that is a function of
the params alone: ``max_iter * max_leaf_nodes <= --max-leaves`` leaves per class. Optuna's
``RandomSampler`` runs beside them with the same trial budget and seed; it does not know the
constraint, so its over-budget proposals are pruned without fitting (they cost a trial each),
whereas the jointnas samplers only ever propose candidates within the budget.

    python studies/samplers_any_objective.py --trials 24 --max-leaves 1000
    optuna-dashboard sqlite:///studies.db

Each sampler has its own study (``<study>-random``, ``-coarse``, ``-genetic``); a rerun tops
each up to ``--trials``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from sklearn.datasets import load_digits
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split

import jointnas
from jointnas.spaces.base import DistributionSpace

SEARCH_SPACE = {
    "learning_rate": FloatDistribution(0.01, 0.5, log=True),
    "max_iter": IntDistribution(5, 200),
    "max_leaf_nodes": IntDistribution(2, 64, log=True),
    "l2_regularization": FloatDistribution(1e-6, 10.0, log=True),
    "max_features": FloatDistribution(0.2, 1.0),
    "early_stopping": CategoricalDistribution((False, True)),
}


def leaf_budget(max_leaves: int) -> Callable[[Mapping[str, Any]], list[float]]:
    """Cheap constraint on the params alone (Optuna's convention: feasible when <= 0)."""

    def constraint(params: Mapping[str, Any]) -> list[float]:
        return [float(params["max_iter"] * params["max_leaf_nodes"] - max_leaves)]

    return constraint


def make_objective(
    constraint: Callable[[Mapping[str, Any]], list[float]], *, seed: int
) -> Callable[[optuna.Trial], float]:
    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.25, stratify=y, random_state=seed
    )
    space = DistributionSpace(SEARCH_SPACE)

    def objective(trial: optuna.Trial) -> float:
        params = space.suggest(trial)
        (over,) = constraint(params)
        trial.set_constraint("leaves", over)
        if over > 0:
            raise optuna.TrialPruned("over the leaf budget; not fitted")
        model = HistGradientBoostingClassifier(**params, random_state=seed)
        return float(model.fit(x_train, y_train).score(x_val, y_val))

    return objective


def brief(params: Mapping[str, Any]) -> str:
    return " ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def make_samplers(
    constraint: Callable[[Mapping[str, Any]], list[float]], args: argparse.Namespace
) -> dict[str, optuna.samplers.BaseSampler]:
    return {
        "random": optuna.samplers.RandomSampler(seed=args.seed),
        "coarse": jointnas.CoarseSampler(
            search_space=SEARCH_SPACE,
            constraint=constraint,
            n_startup_trials=args.startup,
            seed=args.seed,
        ),
        "genetic": jointnas.AdaptiveGeneticSampler(
            search_space=SEARCH_SPACE,
            constraint=constraint,
            population_size=args.population,
            seed=args.seed,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default="sqlite:///studies.db")
    parser.add_argument("--study", default="sklearn-hgb-digits")
    parser.add_argument("--trials", type=int, default=24, help="per sampler")
    parser.add_argument("--max-leaves", type=int, default=1000, help="max_iter * max_leaf_nodes")
    parser.add_argument("--startup", type=int, default=8, help="CoarseSampler's random start")
    parser.add_argument("--population", type=int, default=6, help="genetic population size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    constraint = leaf_budget(args.max_leaves)
    objective = make_objective(constraint, seed=args.seed)
    rows = []
    for name, sampler in make_samplers(constraint, args).items():
        study = optuna.create_study(
            study_name=f"{args.study}-{name}",
            storage=args.storage,
            direction="maximize",
            load_if_exists=True,
            sampler=sampler,
        )
        study.optimize(objective, n_trials=max(0, args.trials - len(study.trials)))
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        best = max(done, key=lambda t: t.value) if done else None
        rows.append(
            {
                "sampler": name,
                "best_acc": best.value if best else np.nan,
                "fitted": len(done),
                "trials": len(study.trials),
                "best_params": brief(best.params) if best else "",
            }
        )
    print(
        f"HistGradientBoostingClassifier on digits, max_iter * max_leaf_nodes <= "
        f"{args.max_leaves}, {args.trials} trials per sampler, seed {args.seed}:"
    )
    with pd.option_context("display.max_colwidth", 200, "display.width", 250):
        print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
