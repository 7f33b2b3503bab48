"""Parallel workers: does CoarseSampler keep its sample efficiency with 4 workers at once?

With N workers, N trials run at the same time. A sampler that only looks at completed trials
proposes N times around the same incumbent; CoarseSampler enters the running trials' proposals
into its surrogate as fantasised observations at their predicted mean (``fantasize=True``), so
the expected improvement near them drops and the workers spread out. Measured here at equal
trials, 1 worker vs 4 (threads of one study, ``optimize(n_jobs=4)``), with fantasies and
without (the ablation), on COCO bbob-mixint problems (``_suites.py``). Each evaluation sleeps
``--eval-seconds`` so that 4 trials really overlap, as trainings do; the sleep costs no CPU.

Score: the best value after ``--trials`` evaluations (minimised), median over seeds, and its
COCO-style precision ``log10(best - f_best + 1e-8)`` with ``f_best`` the best any run reached
on that problem (lower is better; -8 = reached it).

    python benchmarks/bench_parallel_workers.py [--seeds 5] [--trials 60]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import _common
import numpy as np
import optuna
from _suites import build

PROBLEMS = ("bbob-mixint_f010_d05", "bbob-mixint_f015_d05", "bbob-mixint_f021_d05")
SETUPS = {  # name -> (workers, fantasize)
    "1 worker": (1, True),
    "4 workers, fantasies": (4, True),
    "4 workers, no fantasies": (4, False),
}


def one(problem_name: str, setup: str, seed: int, trials: int, pause: float) -> list[float]:
    from jointnas.samplers import CoarseSampler
    from jointnas.spaces.base import DistributionSpace

    workers, fantasize = SETUPS[setup]
    problem = build(problem_name)
    try:
        sampler = CoarseSampler(search_space=problem.space, fantasize=fantasize, seed=seed)
        study = optuna.create_study(sampler=sampler)
        space = DistributionSpace(problem.space)

        def objective(trial: optuna.Trial) -> float:
            params = space.suggest(trial)
            time.sleep(pause)
            return float(problem.objective(params))

        study.optimize(objective, n_trials=trials, n_jobs=workers)
        return [float(t.value) for t in study.trials if t.value is not None]
    finally:
        problem.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--eval-seconds", type=float, default=0.3)
    parser.add_argument("--stem", default="bench_parallel_workers")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    runs: dict[tuple[str, str], list[float]] = {}
    for problem in PROBLEMS:
        for setup in SETUPS:
            for seed in range(args.seeds):
                values = one(problem, setup, seed, args.trials, args.eval_seconds)
                runs[(problem, setup)] = [*runs.get((problem, setup), []), min(values)]
                print(f"{problem} {setup:24s} s{seed}: best {min(values):.4g}", flush=True)
    rows: list[dict[str, Any]] = []
    for problem in PROBLEMS:
        finals = [v for (p, _), vs in runs.items() if p == problem for v in vs]
        f_best = min(finals)
        for setup in SETUPS:
            best = np.array(runs[(problem, setup)])
            gap = np.log10(best - f_best + 1e-8)
            rows.append(
                {
                    "problem": problem,
                    "setup": setup,
                    "median_best": round(float(np.median(best)), 4),
                    "log10_gap_median": round(float(np.median(gap)), 2),
                    "log10_gap_q25": round(float(np.quantile(gap, 0.25)), 2),
                    "log10_gap_q75": round(float(np.quantile(gap, 0.75)), 2),
                }
            )
    _common.finish(args.stem, rows, vars(args))


if __name__ == "__main__":
    main()
