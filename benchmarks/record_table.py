"""Record the real-training table the predictors are fitted and benchmarked on.

Two Optuna studies in one journal file (resumable: rerun the same command to finish a chunk):

* ``table``: ``--trials`` feasible random candidates of the default space (``jointnas run``'s
  coarse stage, ``--max-mflops`` limit), each trained ``--epochs`` epochs on MNIST-5k;
* ``table_reseed``: the first ``--reseed`` of those candidates trained again with another seed,
  so the seed-to-seed rank agreement (the noise ceiling of any predictor) is measured too.

``--workers`` processes share each study through the journal file, one torch thread each
(one thread trains 0.59-0.75x the images/s of two, so two 1-thread processes beat one
2-thread process by 1.2-1.5x: BENCHMARKS.md).
Then both studies are exported to ``benchmarks/data/table.csv``: params, costs, per-epoch
validation accuracies, the reseeded accuracy where there is one.

    python benchmarks/record_table.py [--trials 300] [--reseed 100] [--workers 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import platform
import sys
from pathlib import Path

import optuna
import pandas as pd
import torch

from jointnas.constraints import Limits
from jointnas.evaluators import TrainFromScratch
from jointnas.runs.objective import Objective
from jointnas.runs.pipeline import RunConfig, run
from jointnas.spaces.fbnetv3 import FBNetV3Space
from jointnas.storage.backends import open_storage
from jointnas.training.data import load_dataset
from jointnas.training.trainer import TrainingDiverged

DATA = Path(__file__).resolve().parent / "data"


def _config(args: argparse.Namespace) -> RunConfig:
    return RunConfig(
        storage=args.storage,
        study_name="table",
        stop_after="coarse",
        coarse_sampler="random",  # the table is uniform random feasible candidates, as recorded
        max_mflops=args.max_mflops,
        trials=args.trials,
        epochs=args.epochs,
        seed=args.seed,
        device="cpu",
    )


def _main_worker(args: argparse.Namespace, rank: int) -> None:
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run(_config(args), progress=rank == 0)


def _reseed_worker(args: argparse.Namespace, rank: int) -> None:
    """Train the first ``--reseed`` candidates of ``table`` again, seed ``--seed + 1``: trial
    ``k`` of ``table_reseed`` is enqueued with the params of trial ``k`` of ``table``."""
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(args.storage)
    space = FBNetV3Space()
    data = load_dataset("mnist5k", seed=args.seed)
    study = optuna.load_study(
        study_name="table_reseed",
        storage=storage,
        sampler=optuna.samplers.RandomSampler(),
        pruner=optuna.pruners.NopPruner(),  # the default median pruner would cut trainings short
    )
    objective = Objective(
        space=space,
        evaluator=TrainFromScratch(data=data, epochs=args.epochs, device="cpu"),
        limits=Limits(mflops=args.max_mflops),
        seed=args.seed + 1,
        stage="reseed",
    )
    waiting = (optuna.trial.TrialState.WAITING,)
    while study.get_trials(deepcopy=False, states=waiting):
        study.optimize(objective, n_trials=1, catch=(TrainingDiverged,))


def _enqueue_reseed(args: argparse.Namespace) -> None:
    """Enqueue each of the first ``--reseed`` candidates that has no completed or waiting
    retraining yet (so an interrupted run resumes without duplicates)."""
    storage = open_storage(args.storage)
    source = optuna.load_study(study_name="table", storage=storage)
    study = optuna.create_study(
        storage=storage, study_name="table_reseed", direction="maximize", load_if_exists=True
    )
    covered = {
        t.user_attrs.get("source_trial")
        for t in study.get_trials(deepcopy=False)
        if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.WAITING)
    }
    done = sorted(
        (t for t in source.get_trials(deepcopy=False) if t.state.is_finished()),
        key=lambda t: t.number,
    )
    for t in done[: args.reseed]:
        if t.number not in covered:
            study.enqueue_trial(t.params, user_attrs={"source_trial": t.number})


def _spawn(target, args: argparse.Namespace) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=target, args=(args, rank)) for rank in range(args.workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    if any(p.exitcode != 0 for p in procs):
        raise SystemExit(f"a worker failed: exit codes {[p.exitcode for p in procs]}")


def export(args: argparse.Namespace) -> pd.DataFrame:
    storage = open_storage(args.storage)
    rows = {}
    for t in optuna.load_study(study_name="table", storage=storage).get_trials(deepcopy=False):
        if t.state != optuna.trial.TrialState.COMPLETE and "fail_reason" not in t.user_attrs:
            continue  # interrupted: not a result
        curve = t.user_attrs.get("val_acc_curve", [])
        row = {"trial": t.number, "state": t.state.name, **t.params}
        for key in ("mflops", "params", "acts", "train_seconds", "fail_reason"):
            row[key if key != "params" else "n_params"] = t.user_attrs.get(key)
        for e in range(args.epochs):
            row[f"acc_epoch{e + 1}"] = curve[e] if e < len(curve) else None
        row["acc"] = t.value
        row["acc_reseed"] = None
        rows[t.number] = row
    reseed = optuna.load_study(study_name="table_reseed", storage=storage)
    for t in reseed.get_trials(deepcopy=False):
        src = t.user_attrs.get("source_trial")
        if t.state == optuna.trial.TrialState.COMPLETE and src in rows:
            rows[src]["acc_reseed"] = t.value
    frame = pd.DataFrame(sorted(rows.values(), key=lambda r: r["trial"]))
    DATA.mkdir(parents=True, exist_ok=True)
    out = DATA / "table.csv"
    header = (
        f"# jointnas recorded table: benchmarks/record_table.py --trials {args.trials} "
        f"--reseed {args.reseed} --epochs {args.epochs} --max-mflops {args.max_mflops} "
        f"--seed {args.seed} --workers {args.workers}\n"
        f"# machine: {platform.machine()} {platform.platform()}, torch {torch.__version__}, "
        f"device cpu, dataset mnist5k (4000 train / 1000 val)\n"
    )
    out.write_text(header + frame.to_csv(index=False))
    print(f"wrote {out} ({len(frame)} rows, {frame['acc_reseed'].notna().sum()} reseeded)")
    return frame


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default=str(DATA / "table.journal"))
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--reseed", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-mflops", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--export-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.export_only:
        # create the study (and check the limit) once, before workers race to do it
        run(dataclasses.replace(_config(args), trials=1), progress=False)
        _spawn(_main_worker, args)
        _enqueue_reseed(args)
        _spawn(_reseed_worker, args)
    export(args)


if __name__ == "__main__":
    sys.exit(main())
