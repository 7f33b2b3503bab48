"""Sampler time per suggestion vs Optuna's TPE as a study grows (100, 500, 1,000 trials).

A study over the FBNetV3 'small' space (24 searched params) is filled with N completed trials
(random candidates under a 2-MFLOPs limit, value = a smooth synthetic score of the encoded
params, constraint values stored as ``set_constraint`` would), then each sampler proposes
``--asks`` more candidates (ask + suggest every param + tell). The time of a proposal is what a
worker waits between two trainings. Every sampler sees the same prefilled trials, one after the
other in one process; the table gives each sampler's mean and median seconds over the asks and
the mean's ratio to TPE. The mean is the honest number for CoarseSampler: it refits its
surrogate only when the trials grew by 5% (every 50 at 1,000 trials), so most asks reuse the
last fit; ``--asks`` at least 1/20 of the study size makes every window hold a refit.
CoarseSampler gets the space's vectorised constraint (``constraint_batch``), as in a run, or,
with a ``+py`` suffix, the plain Python ``constraint=`` a user's study script passes (checked
lazily, in acquisition order).

    python benchmarks/bench_sampler_overhead.py [--sizes 100,500,1000] [--asks 50]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import _common
import numpy as np
import optuna
from _curves import sampler_for
from optuna.trial import create_trial

from jointnas.constraints import Limits, cost_feasibility, draw_feasible, uniform_rows
from jointnas.runs.objective import record_constraints
from jointnas.spaces.fbnetv3 import FBNetV3Space

SAMPLERS = (
    "tpe",
    "gp",
    "auto",
    "coarse-xgboost",
    "coarse-xgboost+py",
    "coarse-gp",
    "coarse-gp+py",
    "coarse-gp+xgboost",
    "coarse-gp+xgboost+py",
)


def prefilled(space, n: int, constraint, seed: int) -> list[optuna.trial.FrozenTrial]:
    feasible = cost_feasibility(space, Limits(mflops=2.0), num_classes=10, in_channels=1)
    X = draw_feasible(
        uniform_rows(space.encoder, np.random.default_rng(seed)), n, feasible, max_draws=200_000
    )
    w = np.random.default_rng(seed + 1).normal(size=X.shape[1])
    scores = 1 / (1 + np.exp(-(X - X.mean(0)) / (X.std(0) + 1e-9) @ w / np.sqrt(X.shape[1])))
    dists = dict(space.distributions)
    out = []
    for p, v in zip(space.decode_matrix(X), scores, strict=True):
        c = constraint(p)
        out.append(
            create_trial(
                params=p,
                distributions=dists,
                value=float(v),
                system_attrs={"constraints:mflops": c[0], "constraints": list(c)},
            )
        )
    return out


def make(name: str, space, constraint, constraint_batch, seed: int):
    return sampler_for(
        name, space, constraint, seed, population=20, constraint_batch=constraint_batch
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,500,1000")
    parser.add_argument("--asks", type=int, default=50)
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stem", default="bench_sampler_overhead")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    space = FBNetV3Space()
    limits = Limits(mflops=2.0)
    from jointnas.spaces.nets.cost import cost

    def constraint(p):
        return limits.values(cost(space.decode(p).arch, num_classes=10, in_channels=1))

    feasible = cost_feasibility(space, limits, num_classes=10, in_channels=1)

    def constraint_batch(X):  # the run passes Objective.constraint_batch, the same cost
        return np.where(feasible(X), -1.0, 1.0)[:, None]

    samplers = args.samplers.split(",")

    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        trials = prefilled(space, n, constraint, args.seed)
        times, medians = {}, {}
        for name in samplers:
            study = optuna.create_study(
                direction="maximize",
                sampler=make(name, space, constraint, constraint_batch, args.seed),
            )
            study.add_trials(trials)
            seconds = []
            for _ in range(args.asks):
                t0 = time.perf_counter()
                trial = study.ask()
                params = space.suggest(trial)
                seconds.append(time.perf_counter() - t0)
                record_constraints(trial, ["mflops"], constraint(params))  # as a run stores them
                study.tell(trial, 0.5)
            times[name] = statistics.fmean(seconds)
            medians[name] = statistics.median(seconds)
            print(
                f"n={n:5d} {name:10s} mean {times[name] * 1e3:9.1f} ms, median "
                f"{medians[name] * 1e3:9.1f} ms per suggestion",
                flush=True,
            )
        for name in samplers:
            rows.append(
                {
                    "trials": n,
                    "sampler": name,
                    "ms_mean": round(times[name] * 1e3, 2),
                    "ms_median": round(medians[name] * 1e3, 2),
                    "mean_vs_tpe": round(times[name] / times["tpe"], 3) if "tpe" in times else None,
                }
            )
    _common.finish(args.stem, rows, vars(args))


if __name__ == "__main__":
    main()
