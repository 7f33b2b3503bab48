"""What a space without a vectorised cost twin pays: the row-by-row fallback vs the twin.

A new space only has to bring a scalar ``cost``; ``Space.cost_batch`` then decodes an encoded
population row by row. This measures, on the same FBNetV3 space (``fbnetv3-small``), the
vectorised twin against that fallback (a subclass that drops the twin): the cost of 4,096
encoded rows (results must be equal), and the fine search's candidates/s under a 1-MFLOPs
limit with the same XGBoost predictor, side by side in one run.

    python benchmarks/bench_space_fallback.py [--seed 0] [--generations 5]
"""

from __future__ import annotations

import argparse
import time

import _common
import numpy as np
from bench_fine_search import LIMIT, fitted_predictor

from jointnas.constraints import Limits, cost_feasibility
from jointnas.runs.search import fine_search
from jointnas.spaces.base import Space
from jointnas.spaces.fbnetv3 import FBNetV3Space


class ScalarCostSpace(FBNetV3Space):
    """``fbnetv3-small`` as a space that brought only its scalar cost."""

    cost_batch = Space.cost_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--generations", type=int, default=5)
    args = parser.parse_args()
    spaces = {"vectorised twin": FBNetV3Space(), "scalar fallback": ScalarCostSpace()}
    rng = np.random.default_rng(args.seed)
    X = spaces["vectorised twin"].encode(
        [spaces["vectorised twin"].sample(rng) for _ in range(args.rows)]
    )
    predictor, _ = fitted_predictor(spaces["vectorised twin"], args.seed)
    rows, costs = [], {}
    for name, space in spaces.items():
        start = time.perf_counter()
        costs[name] = space.cost_batch(X, num_classes=10, in_channels=1)
        cost_s = time.perf_counter() - start
        feasible = cost_feasibility(space, Limits(mflops=LIMIT), num_classes=10, in_channels=1)
        result = fine_search(
            space,
            predictor,
            feasible=feasible,
            generations=args.generations,
            children=4096,
            seed=args.seed,
        )
        rows.append(
            {
                "cost": name,
                "cost_rows_per_s": round(args.rows / cost_s),
                "fine_candidates_per_s": round(result.rate),
                "fine_best_predicted": round(float(result.predicted[0]), 4),
            }
        )
    a, b = (costs[k] for k in spaces)
    assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("flops", "params", "acts"))
    for row in rows:
        row["twin/this (fine search)"] = round(
            rows[0]["fine_candidates_per_s"] / row["fine_candidates_per_s"], 1
        )
    _common.finish("bench_space_fallback", rows, vars(args))


if __name__ == "__main__":
    main()
