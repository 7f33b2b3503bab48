"""jointnas's samplers vs Optuna's on a cheap real objective that is not NAS.

The objective of ``studies/samplers_any_objective.py``: a HistGradientBoostingClassifier on
scikit-learn's digits, a mixed search space (log floats, ints, a float, a categorical) and a
cheap constraint on the params (``max_iter * max_leaf_nodes <= 1000``). Every sampler gets the
same trial budget per seed; an over-budget proposal is pruned unfitted and still costs a trial
(Optuna's samplers only learn the constraint from ``set_constraint`` after the fact).
Baselines: Random, Random restricted to feasible candidates (jointnas.FeasibleSampler: the fair
one), TPE (multivariate, constraint-aware).

    python benchmarks/bench_samplers_sklearn.py [--seeds 5] [--trials 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import _common
import optuna

sys.path.insert(0, str(_common.ROOT / "studies"))
from samplers_any_objective import SEARCH_SPACE, leaf_budget, make_objective

import jointnas


def samplers(constraint, seed: int, startup: int) -> dict[str, optuna.samplers.BaseSampler]:
    return {
        "Random": optuna.samplers.RandomSampler(seed=seed),
        "Random (feasible only)": jointnas.FeasibleSampler(
            search_space=SEARCH_SPACE, constraint=constraint, seed=seed
        ),
        "TPE (multivariate)": optuna.samplers.TPESampler(
            seed=seed, multivariate=True, n_startup_trials=startup
        ),
        "CoarseSampler": jointnas.CoarseSampler(
            search_space=SEARCH_SPACE, constraint=constraint, n_startup_trials=startup, seed=seed
        ),
        "AdaptiveGeneticSampler": jointnas.AdaptiveGeneticSampler(
            search_space=SEARCH_SPACE, constraint=constraint, population_size=6, seed=seed
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--startup", type=int, default=8)
    parser.add_argument("--max-leaves", type=int, default=1000)
    parser.add_argument("--samplers", default="", help="comma list of names (default: all)")
    parser.add_argument("--stem", default="bench_samplers_sklearn")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    constraint = leaf_budget(args.max_leaves)
    t0 = time.perf_counter()
    runs = []
    for seed in range(args.seeds):
        objective = make_objective(constraint, seed=seed)
        for name, sampler in samplers(constraint, seed, args.startup).items():
            if args.samplers and name not in args.samplers.split(","):
                continue
            study = optuna.create_study(direction="maximize", sampler=sampler)
            study.optimize(objective, n_trials=args.trials)
            done = [t.value for t in study.trials if t.state.name == "COMPLETE"]
            runs.append(
                {"sampler": name, "seed": seed, "best": max(done, default=0.0), "fitted": len(done)}
            )
            print(
                f"  seed {seed} {name:24s} best {runs[-1]['best']:.4f} "
                f"({len(done)}/{args.trials} fitted)",
                flush=True,
            )
    rows = []
    for name in dict.fromkeys(r["sampler"] for r in runs):
        sel = [r for r in runs if r["sampler"] == name]
        bests = [r["best"] for r in sel]
        rows.append(
            {
                "sampler": name,
                "seeds": len(sel),
                "best_median": round(statistics.median(bests), 4),
                "best_range": f"{min(bests):.4f}-{max(bests):.4f}",
                "fitted_median": statistics.median(r["fitted"] for r in sel),
            }
        )
    facts = _common.machine_facts()
    facts["wall_s"] = round(time.perf_counter() - t0, 1)
    table = _common.print_table(rows, list(rows[0]))
    _common.write_results(
        args.stem,
        rows,
        facts,
        extra={"settings": vars(args), "runs": runs, "table_markdown": table},
    )
    print(f"\nwrote benchmarks/results/{args.stem}.{{csv,json}} in {facts['wall_s']} s")


if __name__ == "__main__":
    main()
