"""Storage backends: trials per second for the bookkeeping of a jointnas trial, no training.

Each trial does what ``jointnas.Objective`` does to the storage around a training: ask, suggest
the 24 params of the FBNetV3 'small' space (random sampler), set 6 user attrs and a constraint,
report 2 intermediate values, tell. Backends: Optuna's in-memory storage, a journal file,
SQLite, and PostgreSQL (a throwaway local server, ``jointnas.testing.postgres_server``). One
process, then ``--procs`` processes on one study (not in-memory: it cannot be shared).

    python benchmarks/bench_storage.py [--trials 200] [--procs 4]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import _common
import optuna

from jointnas.spaces.fbnetv3 import FBNetV3Space


def one_trial(study: optuna.Study, space: FBNetV3Space) -> None:
    trial = study.ask()
    params = space.suggest(trial)
    for key, value in (("stage", "coarse"), ("worker", "host:1"), ("mflops", 1.5)):
        trial.set_user_attr(key, value)
    for key, value in (("params", 100_000), ("acts", 20_000), ("train_seconds", 1.0)):
        trial.set_user_attr(key, value)
    trial.set_constraint("mflops", -0.5)
    trial.report(0.5, 0)
    trial.report(0.6, 1)
    study.tell(trial, 0.6 + 1e-6 * len(params))


def worker(url: str, study_name: str, trials: int, seed: int) -> float:
    """Run ``trials`` trials; return the seconds they took."""
    from jointnas.storage.backends import open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(
        study_name=study_name,
        storage=open_storage(url),
        sampler=optuna.samplers.RandomSampler(seed=seed),
    )
    space = FBNetV3Space()
    t0 = time.perf_counter()
    for _ in range(trials):
        one_trial(study, space)
    return time.perf_counter() - t0


@contextlib.contextmanager
def backend(name: str, tmp: str):
    if name == "journal":
        yield f"{tmp}/bench.log"
    elif name == "sqlite":
        yield f"sqlite:///{tmp}/bench.db"
    elif name == "postgresql":
        from jointnas.testing.postgres import postgres_server

        with postgres_server("bench") as url:
            yield url
    else:
        raise ValueError(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="per process")
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--stem", default="bench_storage")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    rows = []
    space = FBNetV3Space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    t0 = time.perf_counter()
    for _ in range(args.trials):
        one_trial(study, space)
    rows.append(
        {
            "backend": "in-memory",
            "processes": 1,
            "trials": args.trials,
            "trials_per_s": round(args.trials / (time.perf_counter() - t0), 1),
        }
    )
    print(rows[-1], flush=True)
    from jointnas.storage.backends import open_storage

    for name in ("journal", "sqlite", "postgresql"):
        for procs in (1, args.procs):
            with tempfile.TemporaryDirectory() as tmp, backend(name, tmp) as url:
                optuna.create_study(study_name="bench", storage=open_storage(url))
                if procs == 1:
                    wall = worker(url, "bench", args.trials, 0)
                else:  # the slowest worker's own time: process start-up is not counted
                    ctx = get_context("spawn")
                    with ProcessPoolExecutor(procs, mp_context=ctx) as pool:
                        futures = [
                            pool.submit(worker, url, "bench", args.trials, s) for s in range(procs)
                        ]
                        wall = max(f.result() for f in futures)
            rows.append(
                {
                    "backend": name,
                    "processes": procs,
                    "trials": procs * args.trials,
                    "trials_per_s": round(procs * args.trials / wall, 1),
                }
            )
            print(rows[-1], flush=True)
    _common.finish(args.stem, rows, vars(args))


if __name__ == "__main__":
    main()
