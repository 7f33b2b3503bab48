"""Fine-search throughput: candidates scored per second, ours vs two references.

* ours: ``jointnas.runs.search.fine_search`` (whole generations as matrices: vectorised crossover,
  mutation, snapping, batch cost, one predictor call per generation);
* naive: the same genetic loop one candidate at a time (mutate a params dict, decode, scalar
  ``cost``, ``predictor.predict`` of one row): what a straightforward implementation does;
* NSGA-II: Optuna's ``NSGAIISampler`` driving ``study.optimize`` with the predictor as the
  objective and the MFLOPs limit as its constraint (in-memory storage).

All three score candidates of the default space under a 1-MFLOPs limit with the same fitted
XGBoost predictor (fitted on the recorded table when present, else on random targets: the
speed does not depend on what it learned). Goal: >= 100k candidates/s for ours on 2 cores.

    python benchmarks/bench_fine_search.py [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import _common
import numpy as np
import optuna

from jointnas.constraints import Limits, cost_feasibility
from jointnas.predictors import XGBoostPredictor, read_table
from jointnas.runs.search import fine_search
from jointnas.spaces.fbnetv3 import FBNetV3Space
from jointnas.spaces.nets.cost import cost
from jointnas.spaces.recipe_axes import before_augment_axis

LIMIT = 1.0


def fitted_predictor(space: FBNetV3Space, seed: int) -> tuple[XGBoostPredictor, str]:
    table = _common.ROOT / "benchmarks" / "data" / "table.csv"
    if Path(table).exists():
        params, frame = read_table(table, space)
        return XGBoostPredictor(space=space, seed=seed).fit(params, frame["acc"]), "table.csv"
    rng = np.random.default_rng(seed)
    params = [space.sample(rng) for _ in range(200)]
    return XGBoostPredictor(space=space, seed=seed).fit(params, rng.random(200)), "random"


def bench_ours(space, predictor, seed: int, generations: int) -> dict:
    feasible = cost_feasibility(space, Limits(mflops=LIMIT), num_classes=10, in_channels=1)
    result = fine_search(
        space, predictor, feasible=feasible, generations=generations, children=4096, seed=seed
    )
    return {"scored": result.scored, "seconds": result.seconds, "best": float(result.predicted[0])}


def bench_naive(space, predictor, seed: int, budget_s: float) -> dict:
    """One candidate at a time: mutate one gene of a random elite, check, score."""
    rng = np.random.default_rng(seed)
    elite = []
    while len(elite) < 16:
        p = space.sample(rng)
        if cost(space.decode(p).arch, num_classes=10, in_channels=1).mflops <= LIMIT:
            elite.append((float(predictor.predict([p])[0]), p))
    names = list(space.distributions)
    scored, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget_s:
        parent = elite[rng.integers(len(elite))][1]
        child = dict(parent)
        name = names[rng.integers(len(names))]
        child[name] = space.sample(rng)[name]
        if cost(space.decode(child).arch, num_classes=10, in_channels=1).mflops > LIMIT:
            continue
        score = float(predictor.predict([child])[0])
        scored += 1
        worst = min(range(len(elite)), key=lambda i: elite[i][0])
        if score > elite[worst][0]:
            elite[worst] = (score, child)
    best = max(s for s, _ in elite)
    return {"scored": scored, "seconds": time.perf_counter() - start, "best": best}


def bench_nsga2(space, predictor, seed: int, trials: int) -> dict:
    def objective(trial: optuna.Trial) -> float:
        p = space.suggest(trial)
        mflops = cost(space.decode(p).arch, num_classes=10, in_channels=1).mflops
        trial.set_user_attr("c", mflops - LIMIT)
        trial.set_constraint("mflops", mflops - LIMIT)  # Optuna 5: NSGA-II reads it
        return float(predictor.predict([p])[0])

    sampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=64)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    start = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    seconds = time.perf_counter() - start
    feasible = [t.value for t in study.trials if t.user_attrs["c"] <= 0]
    return {"scored": trials, "seconds": seconds, "best": max(feasible)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generations", type=int, default=30)
    parser.add_argument("--naive-seconds", type=float, default=10.0)
    parser.add_argument("--nsga2-trials", type=int, default=2000)
    parser.add_argument("--stem", default="bench_fine_search")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with before_augment_axis():  # the table was recorded before the augment axis
        space = FBNetV3Space()
    predictor, fitted_on = fitted_predictor(space, args.seed)
    facts = _common.machine_facts()
    t0 = time.perf_counter()
    runs = {
        "ours (fine_search)": bench_ours(space, predictor, args.seed, args.generations),
        "naive per-candidate loop": bench_naive(space, predictor, args.seed, args.naive_seconds),
        "Optuna NSGA-II trial loop": bench_nsga2(space, predictor, args.seed, args.nsga2_trials),
    }
    ours_rate = runs["ours (fine_search)"]["scored"] / runs["ours (fine_search)"]["seconds"]
    rows = []
    for name, r in runs.items():
        rate = r["scored"] / r["seconds"]
        rows.append(
            {
                "method": name,
                "scored": r["scored"],
                "seconds": round(r["seconds"], 2),
                "candidates_per_s": round(rate),
                "ours/this": round(ours_rate / rate, 1),
                "best_predicted": round(r["best"], 4),
            }
        )
    facts["wall_s"] = round(time.perf_counter() - t0, 1)
    facts["predictor_fitted_on"] = fitted_on
    table = _common.print_table(rows, list(rows[0]))
    _common.write_results(
        args.stem, rows, facts, extra={"settings": vars(args), "table_markdown": table}
    )
    print(f"\nwrote benchmarks/results/{args.stem}.{{csv,json}}")


if __name__ == "__main__":
    main()
