"""Do CoarseSampler and AdaptiveGeneticSampler beat random search at equal budget?

The three comparisons that used to be assertions in the test suite (a comparison over a few
seeds is a measurement, not a functional check: the tests now check what the samplers do,
this script measures how well they do it). Each problem is a cheap made-up objective
(minimised, 0 at its optimum), run with the settings those tests used; every sampler gets the
same budget and the same seeds, and Optuna's ``RandomSampler(seed=s)`` is the baseline:

- ``coarse-mixed``: ``CoarseSampler`` with a fixed search space (float, log float, stepped int,
  a categorical of mixed types), 10 Sobol startup trials, a pool of 256, an XGBoost predictor
  of 50 trees; 40 trials. The old test's check: median best < random's median best.
- ``genetic-mixed``: ``AdaptiveGeneticSampler`` (population 6) over two floats, a log int, a
  categorical and a log float; 60 trials. Old check: median best < half of random's.
- ``coarse-dropin``: ``CoarseSampler(seed=s)`` with its defaults and no search space (a
  drop-in for TPE) over a float, an int and a categorical; 30 trials. Old check: better than
  random on every seed.

The table gives, per problem, the median (and quartiles) of the best value over the seeds for
ours and for random, on how many seeds ours ended lower, and whether the old test's check holds
on these seeds.

    python benchmarks/bench_beats_random.py [--seeds 10] [--problems coarse-mixed,...]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import _common
import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from jointnas.predictors.xgb import XGBoostPredictor
from jointnas.samplers.coarse import CoarseSampler
from jointnas.samplers.genetic import AdaptiveGeneticSampler
from jointnas.spaces.base import DistributionSpace
from jointnas.testing.problems import (
    FIVE_PARAMS,
    MIXED_TYPES,
    THREE_PARAMS,
    five_params_value,
    mixed_types_value,
    three_params_value,
)

Flt, Int, Cat = FloatDistribution, IntDistribution, CategoricalDistribution

# the problems and their objectives are the tests' (``jointnas.testing.problems``)
COARSE_SPACE, coarse_value = MIXED_TYPES, mixed_types_value
GENETIC_SPACE, genetic_value = FIVE_PARAMS, five_params_value
DROPIN_SPACE, dropin_value = THREE_PARAMS, three_params_value


def coarse_sampler(seed: int) -> CoarseSampler:
    predictor = XGBoostPredictor(
        space=DistributionSpace(COARSE_SPACE), seed=seed, n_estimators=50, n_jobs=1
    )
    return CoarseSampler(
        search_space=COARSE_SPACE,
        predictor=predictor,
        n_startup_trials=10,
        pool_size=256,
        max_tries=4096,
        seed=seed,
    )


@dataclass(frozen=True)
class Problem:
    space: dict[str, BaseDistribution]
    value: Callable[[Mapping[str, Any]], float]
    ours: str
    make: Callable[[int], optuna.samplers.BaseSampler]
    trials: int
    check: str  # the old test's assertion, in words
    holds: Callable[[list[float], list[float]], bool]


PROBLEMS = {
    "coarse-mixed": Problem(
        COARSE_SPACE,
        coarse_value,
        "CoarseSampler",
        coarse_sampler,
        40,
        "median < random's",
        lambda ours, rand: statistics.median(ours) < statistics.median(rand),
    ),
    "genetic-mixed": Problem(
        GENETIC_SPACE,
        genetic_value,
        "AdaptiveGeneticSampler",
        lambda s: AdaptiveGeneticSampler(search_space=GENETIC_SPACE, population_size=6, seed=s),
        60,
        "median < 0.5 x random's",
        lambda ours, rand: statistics.median(ours) < 0.5 * statistics.median(rand),
    ),
    "coarse-dropin": Problem(
        DROPIN_SPACE,
        dropin_value,
        "CoarseSampler (drop-in)",
        lambda s: CoarseSampler(seed=s),
        30,
        "lower on every seed",
        lambda ours, rand: all(o < r for o, r in zip(ours, rand, strict=True)),
    ),
}


def best_value(problem: Problem, sampler: optuna.samplers.BaseSampler) -> float:
    space = DistributionSpace(problem.space)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: problem.value(space.suggest(t)), n_trials=problem.trials)
    return study.best_value


def quartiles(values: list[float]) -> str:
    q1, q3 = np.percentile(values, [25, 75])
    return f"{q1:.3g} to {q3:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (default 10)")
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--stem", default="bench_beats_random")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    seeds = list(range(args.seeds))

    rows = []
    for name in args.problems.split(","):
        problem = PROBLEMS[name]
        start = time.perf_counter()
        ours = [best_value(problem, problem.make(s)) for s in seeds]
        rand = [best_value(problem, optuna.samplers.RandomSampler(seed=s)) for s in seeds]
        seconds = time.perf_counter() - start
        print(f"{name}: ours {[round(v, 3) for v in ours]}", flush=True)
        print(f"{name}: random {[round(v, 3) for v in rand]} ({seconds:.0f} s)", flush=True)
        rows.append(
            {
                "problem": name,
                "sampler": problem.ours,
                "trials": problem.trials,
                "seeds": f"0-{seeds[-1]}",
                "ours median": statistics.median(ours),
                "ours 25-75%": quartiles(ours),
                "random median": statistics.median(rand),
                "random 25-75%": quartiles(rand),
                "ours lower": f"{sum(o < r for o, r in zip(ours, rand, strict=True))}/{len(seeds)}",
                "old test's check": problem.check,
                "holds": "yes" if problem.holds(ours, rand) else "NO",
            }
        )
    _common.finish(args.stem, rows, vars(args))


if __name__ == "__main__":
    main()
