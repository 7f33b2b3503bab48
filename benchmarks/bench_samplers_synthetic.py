"""jointnas's samplers vs Optuna's on synthetic mixed-type objectives under a constraint.

Shows the samplers are not tied to the FBNetV3 space: two made-up objectives over the same
mixed space (floats, a log float, ints, a categorical, a bool) with a linear constraint that cuts
through the unconstrained optimum, so the best feasible point lies on the boundary.

- ``bowl``: a shifted quadratic (smooth, one optimum);
- ``rastrigin``: a shifted Rastrigin over the floats plus the same int/categorical terms
  (many local optima).

Every method gets the same number of evaluations; an infeasible proposal of a baseline is an
evaluation too (value recorded, constraint violated, so constraint-aware TPE and NSGA-II learn
from it), and a run's score is its best *feasible* value so far. ``CoarseSampler`` and
``AdaptiveGeneticSampler`` take the constraint and only propose feasible points.

    python benchmarks/bench_samplers_synthetic.py [--seeds 10] [--trials 100]
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import _common
import numpy as np
import optuna
from _curves import BASELINES, baseline_sampler, best_so_far, plot_panels, summarize
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

import jointnas

SPACE = {
    "x1": FloatDistribution(-5.0, 5.0),
    "x2": FloatDistribution(-5.0, 5.0),
    "x3": FloatDistribution(-5.0, 5.0),
    "lr": FloatDistribution(1e-5, 1.0, log=True),
    "n1": IntDistribution(0, 20),
    "n2": IntDistribution(1, 64, log=True),
    "kind": CategoricalDistribution(("a", "b", "c", "d")),
    "flag": CategoricalDistribution((False, True)),
}
OPTIMUM = {"x1": 1.5, "x2": 1.0, "x3": -2.0, "lr": 1e-2, "n1": 7, "n2": 16}
KIND_PENALTY = {"a": 2.0, "b": 0.0, "c": 1.0, "d": 3.0}
NO_FEASIBLE_YET = -200.0  # a run's score before its first feasible point: below any feasible one
OURS = ("coarse", "genetic")


def constraint(p) -> list[float]:
    """x1 + x2 + n1 / 4 <= 3: the unconstrained optimum (sum 4.25) is infeasible."""
    return [p["x1"] + p["x2"] + p["n1"] / 4 - 3.0]


def _discrete(p) -> float:
    return (
        (math.log10(p["lr"]) + 2.0) ** 2
        + ((p["n1"] - OPTIMUM["n1"]) / 4) ** 2
        + (math.log2(p["n2"]) - 4.0) ** 2 / 4
        + KIND_PENALTY[p["kind"]]
        + (0.0 if p["flag"] else 0.5)
    )


def bowl(p) -> float:
    d = sum((p[k] - OPTIMUM[k]) ** 2 for k in ("x1", "x2", "x3"))
    return -(d + _discrete(p))


def rastrigin(p) -> float:
    z = [p[k] - OPTIMUM[k] for k in ("x1", "x2", "x3")]
    r = 10 * len(z) + sum(v * v - 10 * math.cos(2 * math.pi * v) for v in z)
    return -(r / 4 + _discrete(p))


OBJECTIVES = {"bowl": bowl, "rastrigin": rastrigin}


def sampler(method: str, seed: int):
    baseline = baseline_sampler(method, seed)
    if baseline is not None:
        return baseline
    if method == "coarse":
        return jointnas.CoarseSampler(search_space=SPACE, constraint=constraint, seed=seed)
    if method == "genetic":
        return jointnas.AdaptiveGeneticSampler(
            search_space=SPACE, constraint=constraint, population_size=10, seed=seed
        )
    raise ValueError(method)


def run_one(fn, method: str, seed: int, trials: int) -> tuple[list[float], float]:
    """Feasible values in evaluation order (-inf for an infeasible one), seconds."""

    def objective(trial: optuna.Trial) -> float:
        p = {name: trial._suggest(name, dist) for name, dist in SPACE.items()}
        c = constraint(p)[0]
        trial.set_constraint("sum", c)
        return fn(p)

    study = optuna.create_study(direction="maximize", sampler=sampler(method, seed))
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    seconds = time.perf_counter() - t0
    values = [
        t.value if t.constraints.get("sum", 0.0) <= 0 else -math.inf
        for t in sorted(study.trials, key=lambda t: t.number)
    ]
    return values, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--stem", default="bench_samplers_synthetic")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    rows, summary, panels, curves = [], {}, [], {}
    t0 = time.perf_counter()
    for name, fn in OBJECTIVES.items():
        for method in BASELINES + OURS:
            runs = []
            for seed in range(args.seeds):
                values, seconds = run_one(fn, method, seed, args.trials)
                runs.append(best_so_far(values, args.trials, floor=NO_FEASIBLE_YET))
                rows.append(
                    {
                        "objective": name,
                        "method": method,
                        "seed": seed,
                        "best": round(float(runs[-1][-1]), 4),
                        "feasible": sum(v > -math.inf for v in values),
                        "seconds": round(seconds, 2),
                    }
                )
            curves[f"{name}:{method}"] = np.stack(runs)
            print(f"{name:10s} {method:8s} median best {np.median([r[-1] for r in runs]):.3f}")
        sub = {m.split(":", 1)[1]: c for m, c in curves.items() if m.startswith(f"{name}:")}
        summary[name] = summarize(sub, BASELINES, args.trials)
        panels.append((name, sub))
    facts = _common.machine_facts()
    facts["wall_s"] = round(time.perf_counter() - t0, 1)
    _common.write_results(
        args.stem, rows, facts, extra={"settings": vars(args), "summary": summary}
    )
    for name, sub in panels:
        plot_panels(
            [(f"{name}: best feasible value, {args.seeds} seeds", BASELINES + OURS)],
            sub,
            args.trials,
            _common.RESULTS / f"{args.stem}_{name}.png",
            baselines=BASELINES,
            xlabel="evaluations",
            ylabel="best feasible value so far",
        )
    for name, s in summary.items():
        for m, v in s.items():
            print(name, m, v)


if __name__ == "__main__":
    main()
