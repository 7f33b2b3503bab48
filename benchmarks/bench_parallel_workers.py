"""Parallel workers at equal trials: 1 vs 4 vs 8 workers, CoarseSampler vs GPSampler and TPE.

With N workers, N trials run at once, and a sampler that only looks at completed trials
proposes N times around the same incumbent. CoarseSampler's default scores a candidate by the
expected improvement it adds to the running trials' proposals (q-EI over the GP's joint
posterior, ``fantasize="qei"``, as Optuna 5's GPSampler does with qLogEI); ``coarse-mean``
enters them as fantasies at their predicted mean (kriging believer), ``coarse-worst`` at the
worst value seen (constant liar); TPE uses its constant liar.

The workers are simulated, so a run is deterministic and costs no sleeping: N trials are kept
running; each step completes the oldest (every evaluation takes equally long) and asks for the
next, so the sampler always sees N - 1 running trials, in one process, through the study as
real workers would. Problems: COCO bbob-mixint f10/f15/f21 (5-D, unconstrained), bbob-constrained
f8/f20 (5-D) and the tabular NAS problem under its FLOPs limit (``_suites.py``). Score as in
``bench_sampler_suites.py``: per problem, 1 = the best feasible value any run here reached, 0 =
the median first feasible value; median over seeds, with the quartiles.

One run = (problem, sampler, workers, seed), stored as
``results/parallel_workers/<problem>/<sampler>_w<workers>_s<seed>.json`` and skipped when present
(resumable, so it can run in parts).

    python benchmarks/bench_parallel_workers.py [--seeds 5] [--trials 60] [--jobs 2]
    python benchmarks/bench_parallel_workers.py --report
"""

from __future__ import annotations

import argparse
import collections
import json
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Any

import _common
import _suites  # sets the BLAS/OpenMP threads to 1 before numpy loads
import numpy as np
from bench_sampler_suites import _normalise, new_study, store

RUNS = _common.RESULTS / "parallel_workers"
PROBLEMS = (
    "bbob-mixint_f010_d05",
    "bbob-mixint_f015_d05",
    "bbob-mixint_f021_d05",
    "bbob-constrained_f008_d05",
    "bbob-constrained_f020_d05",
    "nas-table_fbnetv3-1mflops",
)
#: name -> (sampler of bench_sampler_suites.make, CoarseSampler's extra arguments)
SAMPLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "coarse": ("coarse", {}),
    "coarse-mean": ("coarse", {"fantasize": "mean"}),
    "coarse-worst": ("coarse", {"fantasize": "worst"}),
    "coarse-off": ("coarse", {"fantasize": "off"}),
    "GP": ("GP", {}),
    "TPE": ("TPE", {}),
}
WORKERS = (1, 4, 8)


def run(problem_name: str, sampler: str, workers: int, seed: int, trials: int) -> dict:
    """One simulated parallel search: per evaluation (in completion order) the feasible value
    (None if infeasible) and the sampler's seconds for the ask that proposed it."""
    import optuna
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    problem = _suites.build(problem_name)
    name, kwargs = SAMPLERS[sampler]
    rec: dict[str, Any] = {"problem": problem_name, "sampler": sampler, "workers": workers}
    rec |= {"seed": seed, "trials": trials, "machine": _common.machine_facts()}
    values: list[float | None] = []
    seconds: list[float] = []
    t_start = time.perf_counter()
    try:
        with threadpool_limits(1):
            study = new_study(problem, name, seed, kwargs)
            running: collections.deque = collections.deque()
            asked = 0
            while len(values) < trials:
                while len(running) < workers and asked < trials:
                    t0 = time.perf_counter()
                    trial = study.ask(problem.space)
                    seconds.append(time.perf_counter() - t0)
                    cons = problem.constraint(trial.params) if problem.constraint else []
                    for i, v in enumerate(cons):
                        trial.set_constraint(f"c{i}", v)
                    feasible = all(v <= 0 for v in cons)
                    running.append((trial, problem.objective(trial.params), feasible))
                    asked += 1
                trial, value, feasible = running.popleft()
                study.tell(trial, value)
                values.append(value if feasible else None)
    except Exception as exc:  # a sampler that fails is a result too
        rec["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        problem.close()
    rec["wall_s"] = round(time.perf_counter() - t_start, 2)
    return rec | {"values": values, "sampler_s": seconds}


def _path(problem: str, sampler: str, workers: int, seed: int):
    return RUNS / problem / f"{sampler}_w{workers}_s{seed}.json"


def run_all(args) -> None:
    todo = [
        (p, s, w, seed)
        for p in args.problems
        for seed in range(args.seeds)
        for s in args.samplers
        for w in args.workers
        if not _path(p, s, w, seed).is_file()
    ]
    print(f"{len(todo)} runs to do on {args.jobs} process(es)", flush=True)

    def save(rec: dict) -> None:
        path = _path(rec["problem"], rec["sampler"], rec["workers"], rec["seed"])
        store(path, rec, f"{rec['sampler']:12s} w{rec['workers']}")

    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run, *job, args.trials) for job in todo]
        for f in as_completed(futures):
            save(f.result())


def report(args) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    finals: dict[tuple[str, int], list[float]] = collections.defaultdict(list)
    for p in args.problems:
        keys = [
            (s, w, seed)
            for s in args.samplers
            for w in args.workers
            for seed in range(args.seeds)
            if _path(p, s, w, seed).is_file()
        ]
        runs = [json.loads(_path(p, *k).read_text()) for k in keys]
        if not runs:
            continue
        scores = _normalise(runs, args.trials)[0]
        by: dict[tuple[str, int], list[float]] = collections.defaultdict(list)
        for (s, w, _), score in zip(keys, scores, strict=True):
            by[(s, w)].append(float(score[-1]))
        for (s, w), final in sorted(by.items()):
            finals[(s, w)].append(float(np.median(final)))
            rows.append(_row(p, s, w, final))
    for (s, w), per_problem in sorted(finals.items()):
        rows.append(_row("median over problems", s, w, per_problem))
    return rows


def _row(problem: str, sampler: str, workers: int, scores: list[float]) -> dict[str, Any]:
    """Median and quartiles of final scores (over seeds, or per-problem medians)."""
    return {
        "problem": problem,
        "sampler": sampler,
        "workers": workers,
        "n": len(scores),
        "score_median": round(float(np.median(scores)), 3),
        "score_q25": round(float(np.quantile(scores, 0.25)), 3),
        "score_q75": round(float(np.quantile(scores, 0.75)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=lambda s: s.split(","), default=list(PROBLEMS))
    parser.add_argument("--samplers", type=lambda s: s.split(","), default=list(SAMPLERS))
    parser.add_argument(
        "--workers", type=lambda s: [int(w) for w in s.split(",")], default=list(WORKERS)
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--report", action="store_true", help="only aggregate the stored runs")
    parser.add_argument("--stem", default="bench_parallel_workers")
    args = parser.parse_args()
    unknown = [s for s in args.samplers if s not in SAMPLERS]
    if unknown:
        raise SystemExit(f"unknown sampler(s) {unknown}; choose from {list(SAMPLERS)}")
    if not args.report:
        run_all(args)
    _common.finish(args.stem, report(args), vars(args))


if __name__ == "__main__":
    main()
