"""Sample efficiency on real training: jointnas's search vs Optuna's samplers, equal budgets.

Every method gets the same number of *trainings* per seed on one cheap but real task: MNIST-5k
(2,000 training and 1,000 validation images), each candidate trained 1 epoch at batch 64, under
a MFLOPs limit. The measured value is the candidate's validation accuracy after that training;
a method's curve is the best value after k trainings (median and quartiles over seeds).

Methods (one Optuna study per method and seed, 1 CPU thread per training, jobs run in parallel):

- ``random``, ``qmc`` (scrambled Sobol), ``tpe`` (multivariate, constraint-aware) and ``nsga2``
  (constraint-aware, population 10): Optuna's samplers as a user would set them up (Optuna 5's
  TPE and NSGA-II read the constraint values each trial stores with ``set_constraint``). Their
  over-limit proposals are not trained (cost is analytic) and *do not* use up the budget: they
  get value 0 and a violated constraint, so the constraint-aware ones learn from them. This is
  generous to the baselines (a plain Optuna study would spend a trial on each).
- ``coarse``: ``jointnas.CoarseSampler`` with its defaults and the space's vectorised
  constraint (the run's coarse stage), all trainings in the coarse stage (its default surrogate
  is the mixed-space GP); ``coarse-xgboost`` and ``coarse-gp-onehot`` the same with the bagged
  trees or the one-hot scikit-learn GP; ``gp``: Optuna's GPSampler (constraint-aware).
- ``genetic``: ``jointnas.AdaptiveGeneticSampler`` with an XGBoost predictor, population 10.
- ``pipeline``: ``jointnas run``'s stages: coarse (budget - 5 trainings), predictor, fine search
  (no training), then the 5 best predicted distinct candidates trained with the same recipe of
  training (1 epoch) as everything else. ``coarse`` is this pipeline *without* the fine stage.
- ``arch-only``: the pipeline with the recipe pinned to a textbook default (SGD, lr 0.1,
  weight decay 1e-4, no regularisers): FBNetV3's architecture-only search.
- ``recipe-only``: the pipeline with the architecture pinned to the largest-MFLOPs network among
  1,000 seeded random feasible candidates (the usual "biggest model that fits"): AutoTrain.

    python benchmarks/bench_sample_efficiency.py                       # all methods, 5 seeds
    python benchmarks/bench_sample_efficiency.py --methods tpe,coarse --seeds 2 --budget 20

Jobs are stored one JSON per (method, seed) under ``results/sample_efficiency/`` (another
``--stem``: ``results/<stem>_jobs/``) and skipped when present, so an interrupted run resumes;
``--report`` only aggregates what is stored. ``--dataset fashion-mnist:N`` trains on
Fashion-MNIST instead.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import _common
import numpy as np
from _curves import BASELINES, best_so_far, markdown_table, plot_panels, sampler_for, summarize

JOBS = _common.RESULTS / "sample_efficiency"
OURS = ("coarse", "coarse-xgboost", "coarse-gp-onehot", "genetic", "pipeline")
ABLATIONS = ("arch-only", "recipe-only")
METHODS = BASELINES + OURS + ABLATIONS
DEFAULT_RECIPE = {
    "optimizer": "sgd",
    "lr": 0.1,
    "weight_decay": 1e-4,
    "mixup": 0.0,
    "dropout": 0.0,
    "drop_path": 0.0,
    "ema": False,
    "label_smoothing": 0.0,
    # the augment axis came later (issue 28): pinned off, as the stored arch-only jobs (made
    # before it existed) trained
    "augment": 0.0,
}
FINAL_TOP = 5


def _data(args: dict[str, Any]):
    from jointnas.training.data import load_dataset

    name = args.get("dataset", "mnist5k")
    return load_dataset(name, seed=0).subset(train=args["train_images"], val=1000)


def largest_feasible_arch(max_mflops: float, seed: int = 0) -> dict[str, Any]:
    """The architecture params of the largest-MFLOPs of 1,000 random feasible candidates."""
    from jointnas.constraints import Limits, cost_feasibility, draw_feasible, uniform_rows
    from jointnas.spaces.fbnetv3 import FBNetV3Space
    from jointnas.spaces.nets.cost import cost_batch

    space = FBNetV3Space()
    feasible = cost_feasibility(space, Limits(mflops=max_mflops), num_classes=10, in_channels=1)
    rows = uniform_rows(space.encoder, np.random.default_rng(seed))
    X = draw_feasible(rows, 1000, feasible, max_draws=200_000)
    flops = cost_batch(space, X, num_classes=10, in_channels=1).flops
    return space.arch_params(space.decode_matrix(X[[int(np.argmax(flops))]])[0])


def _space(method: str, max_mflops: float):
    from jointnas.spaces.fbnetv3 import FBNetV3Space

    if method == "arch-only":
        return FBNetV3Space(fix=DEFAULT_RECIPE)
    if method == "recipe-only":
        return FBNetV3Space(fix=largest_feasible_arch(max_mflops))
    return FBNetV3Space()


def _sampler(method: str, space, constraint, constraint_batch, seed: int):
    return sampler_for(method, space, constraint, seed, constraint_batch=constraint_batch)


def _trained(study) -> list[float]:
    """Values of the trained trials, in the order they were trained."""
    from optuna.trial import TrialState

    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get("trained", "train_seconds" in t.user_attrs)
    ]
    done.sort(key=lambda t: t.datetime_complete)
    return [float(t.value) for t in done]


def _sampler_job(method: str, seed: int, args: dict[str, Any], data) -> list[float]:
    import optuna

    from jointnas.constraints import Limits
    from jointnas.evaluators import TrainFromScratch
    from jointnas.runs.objective import Objective, record_constraints

    space = _space(method, args["max_mflops"])
    limits = Limits(mflops=args["max_mflops"])
    evaluator = TrainFromScratch(
        data=data, epochs=args["epochs"], batch_size=args["batch_size"], device="cpu"
    )
    objective = Objective(
        space=space,
        evaluator=evaluator,
        limits=limits,
        seed=seed,
        dedupe=False,  # a plain Optuna study trains a repeated proposal again
    )
    constraint = objective.constraint

    def train_if_feasible(trial: optuna.Trial) -> float:
        params = space.suggest(trial)
        values = constraint(params)
        if any(v > 0 for v in values):  # not trained, costs no training
            # as the objective stores them, so every trial carries the same constraints
            record_constraints(trial, list(limits.active()), values)
            trial.set_user_attr("trained", False)
            return 0.0
        trial.set_user_attr("trained", True)
        return objective(trial)  # suggests the same params again (Optuna returns them)

    def stop(study, _trial) -> None:
        if len(_trained(study)) >= args["budget"] or len(study.trials) >= 20 * args["budget"]:
            study.stop()

    study = optuna.create_study(
        direction="maximize",
        sampler=_sampler(method, space, constraint, objective.constraint_batch, seed),
        pruner=optuna.pruners.NopPruner(),
    )
    study.optimize(train_if_feasible, n_trials=20 * args["budget"], callbacks=[stop])
    return _trained(study)[: args["budget"]]


def _pipeline_job(method: str, seed: int, args: dict[str, Any], data) -> list[float]:
    import optuna

    from jointnas.constraints import Limits
    from jointnas.evaluators import TrainFromScratch
    from jointnas.predictors import load_predictor
    from jointnas.runs.objective import Objective
    from jointnas.runs.pipeline import RunConfig, run
    from jointnas.runs.stages import FINE_ATTR, PREDICTOR_ATTR, final_stage
    from jointnas.storage.backends import open_storage
    from jointnas.storage.layout import linked_study

    space = _space(method, args["max_mflops"])
    with tempfile.TemporaryDirectory() as tmp:
        config = RunConfig(
            storage=f"sqlite:///{tmp}/study.db",
            study_name="bench",
            max_mflops=args["max_mflops"],
            trials=args["budget"] - FINAL_TOP,
            epochs=args["epochs"],
            seed=seed,
            device="cpu",
            batch_size=args["batch_size"],
            out=f"{tmp}/out",
            stop_after="fine",
            fix_arch=space.pinned or None,
            heartbeat=None,
        )
        study = run(config, data=data, progress=False)
        # the fine stage's best candidate of each architecture, then every predicted trial
        # (a pinned architecture has one: its recipe variants fill the final slots)
        fine_study = linked_study(study, "fine")
        fine = sorted(fine_study.trials, key=lambda t: -t.value)
        candidates = fine_study.user_attrs[FINE_ATTR]["top"] + [t.params for t in fine]
        predictor = load_predictor(study.user_attrs[PREDICTOR_ATTR]["path"], space=space)
        evaluator = TrainFromScratch(
            data=data, epochs=args["epochs"], batch_size=args["batch_size"], device="cpu"
        )
        final = Objective(
            space=space,
            evaluator=evaluator,
            limits=Limits(mflops=args["max_mflops"]),
            seed=seed,
            stage="final",
        )
        storage = open_storage(config.storage)
        final_study = optuna.create_study(
            storage=storage,
            study_name="bench.final",
            direction="maximize",
            sampler=optuna.samplers.RandomSampler(seed=seed),
            pruner=optuna.pruners.NopPruner(),
        )
        final_stage(final_study, candidates, predictor, final, top=FINAL_TOP, progress=False)
        coarse = optuna.load_study(study_name="bench", storage=storage)
        return _trained(coarse) + _trained(final_study)  # the same budget: coarse then final


def job(method: str, seed: int, args: dict[str, Any]) -> dict[str, Any]:
    """One (method, seed) search; the result JSON holds the trained values in order."""
    import optuna
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # QMCSampler
    data = _data(args)
    t0 = time.perf_counter()
    if method in ("pipeline", *ABLATIONS):
        values = _pipeline_job(method, seed, args, data)
    else:
        values = _sampler_job(method, seed, args, data)
    return {
        "method": method,
        "seed": seed,
        "values": values,
        "seconds": round(time.perf_counter() - t0, 1),
        "args": args,
    }


def _path(method: str, seed: int) -> Path:
    return JOBS / f"{method}_seed{seed}.json"


def _jobs_dir(stem: str) -> Path:
    """Stored jobs of a stem: the first study's directory keeps its name."""
    return JOBS if stem == "bench_sample_efficiency" else _common.RESULTS / f"{stem}_jobs"


def report(methods: list[str], seeds: list[int], budget: int, stem: str) -> None:
    """Aggregate stored jobs: curves CSV, summary JSON, plot."""
    curves: dict[str, np.ndarray] = {}
    rows = []
    for m in methods:
        runs = []
        for s in seeds:
            if _path(m, s).is_file():
                r = json.loads(_path(m, s).read_text())
                runs.append(best_so_far(r["values"], budget))
                for k, v in enumerate(runs[-1], start=1):
                    rows.append({"method": m, "seed": s, "trainings": k, "best": round(v, 4)})
        if runs:
            curves[m] = np.stack(runs)
    if not curves:
        raise SystemExit("no stored jobs to report")
    summary = summarize(curves, BASELINES, budget)
    _common.write_results(
        stem,
        rows,
        _common.machine_facts(),
        extra={"summary": summary, "budget": budget, "seeds": seeds},
    )
    panels = [
        ("ours vs Optuna's samplers", BASELINES + OURS),
        ("FBNetV3 ablations", ("pipeline", "coarse", *ABLATIONS)),
    ]
    plot_panels(
        panels,
        curves,
        budget,
        _common.RESULTS / f"{stem}.png",
        baselines=BASELINES,
        ylabel="best validation accuracy so far",
    )
    table = markdown_table(curves, summary, (10, 20, 25, 40, 50, budget))
    (_common.RESULTS / f"{stem}.md").write_text(table)
    print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--max-mflops", type=float, default=2.0)
    parser.add_argument("--train-images", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--report", action="store_true", help="only aggregate stored jobs")
    parser.add_argument("--dataset", default="mnist5k", help="mnist5k or fashion-mnist[:N]")
    parser.add_argument("--stem", default="bench_sample_efficiency")
    args = parser.parse_args()
    global JOBS
    JOBS = _jobs_dir(args.stem)
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    seeds = list(range(args.seeds))
    cfg = {
        "budget": args.budget,
        "max_mflops": args.max_mflops,
        "train_images": args.train_images,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
    }
    if args.dataset != "mnist5k":  # the first study's jobs were stored without the key
        cfg["dataset"] = args.dataset
    if not args.report:
        JOBS.mkdir(parents=True, exist_ok=True)
        todo = []
        for s in seeds:  # seed-major: a partial run has every method at the first seeds
            for m in methods:
                if _path(m, s).is_file():
                    if json.loads(_path(m, s).read_text())["args"] != cfg:
                        raise SystemExit(f"{_path(m, s)} was made with other settings")
                else:
                    todo.append((m, s))
        print(f"{len(todo)} jobs to run on {args.workers} worker(s)")
        ctx = get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx) as pool:
            futures = {pool.submit(job, m, s, cfg): (m, s) for m, s in todo}
            for f in as_completed(futures):
                r = f.result()
                _path(r["method"], r["seed"]).write_text(json.dumps(r))
                best = max(r["values"]) if r["values"] else float("nan")
                print(
                    f"{r['method']:12s} seed {r['seed']}: {len(r['values'])} trainings, "
                    f"best {best:.4f}, {r['seconds']:.0f} s",
                    flush=True,
                )
    report(methods, seeds, args.budget, args.stem)


if __name__ == "__main__":
    main()
