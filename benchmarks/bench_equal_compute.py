"""Equal compute: the JointNAS pipeline against what a user would run instead, each method given
the same number of training images, its returned model retrained and scored on the test set.

FBNetV3's claim is that a predictor-driven joint search finds a better (architecture, recipe)
pair than the alternatives for the same compute. Every method here searches FBNetV3's small
space under ``--max-mflops`` on one Fashion-MNIST split (seed 0: ``--train-images`` of the
50,000 training images, the same 10,000 held-out validation images for every method) and may
spend ``--full-trainings`` x ``--epochs`` x ``--train-images`` training images:

* ``pipeline``: jointnas's coarse stage (CoarseSampler, early-stopped trainings of
  ``--coarse-epochs`` on the full-budget cosine schedule), the predictor, the fine search,
  and ``--final-top`` finals at the full budget (``--epochs``);
* ``pipeline-arch-only``: the same with the recipe fixed to ``Recipe()`` (architecture only),
  and ``pipeline-recipe-only`` with the architecture fixed (AutoTrain: recipe only), the
  joint vs architecture-only vs recipe-only comparison at equal compute;
* ``tpe-hyperband``: multivariate TPE with ``HyperbandPruner``, full-budget trainings that
  report every epoch;
* ``gp``: GPSampler, full-budget trainings;
* ``random-sh``: random search with ``SuccessiveHalvingPruner``.

A candidate over the limit is never trained and costs nothing. A method's answer is its
best full-budget validation accuracy (a pipeline's: its best final); that candidate is then
retrained at the full budget with ``--retrain-seeds`` seeds on the same training images and
scored once on the official 10,000-image test set, which nothing else touches.

One job = (method, seed): a search of about 20 minutes on one core. Its result is stored in
``results/equal_compute/<method>_s<seed>.json`` and a rerun skips it; its Optuna storage lives in
``benchmarks/state/equal_compute/`` while it runs. A search killed mid-way starts over (its
storage is wiped): Optuna's samplers do not store their random state, so only a search run
from the start gives the result an uninterrupted run gives, and a rerun reproduces the table.
The report (``_equal_compute_report.py``) writes ``results/bench_equal_compute.{csv,json,md,png}``.

    python benchmarks/bench_equal_compute.py --epochs 10 --train-images 10000 --full-trainings 15
    python benchmarks/bench_equal_compute.py --report
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import _common
from _heldout import fashion_split

RUNS = _common.RESULTS / "equal_compute"
STATE = _common.ROOT / "benchmarks" / "state" / "equal_compute"
METHODS = (
    "pipeline",
    "pipeline-arch-only",
    "pipeline-recipe-only",
    "tpe-hyperband",
    "gp",
    "random-sh",
)


def _fix(method: str, cfg: dict[str, Any]) -> dict[str, Any] | None:
    """What an ablation pins: the recipe (``Recipe()``) or the architecture (the largest of
    1,000 seeded feasible draws, as in ``bench_sample_efficiency``)."""
    from jointnas.spaces.recipe import Recipe
    from jointnas.spaces.recipe_axes import RECIPE_KEYS

    if method == "pipeline-arch-only":
        return {k: getattr(Recipe(), k) for k in RECIPE_KEYS}
    if method == "pipeline-recipe-only":
        from bench_sample_efficiency import largest_feasible_arch

        return largest_feasible_arch(cfg["max_mflops"])
    return None


def _space(method: str, cfg: dict[str, Any]) -> Any:
    from jointnas.spaces.fbnetv3 import FBNetV3Space

    return FBNetV3Space(fix=_fix(method, cfg))


def _epochs(t: Any) -> int:
    """Epochs a trial trained (its reported curve; 0 for a candidate never trained)."""
    curve = t.user_attrs.get("val_acc_curve")
    return len(curve) if curve is not None else len(t.intermediate_values)


def trainings(study: Any, num_train: int, full_epochs: int) -> list[dict[str, Any]]:
    """Every training of ``study`` in the order it ended: epochs, images, value, full budget."""
    from optuna.trial import TrialState

    ended = [t for t in study.get_trials(deepcopy=False) if t.datetime_complete and _epochs(t)]
    ended.sort(key=lambda t: t.datetime_complete)
    out = []
    for t in ended:
        full = t.state == TrialState.COMPLETE and _epochs(t) >= full_epochs
        acc = t.user_attrs.get("accuracy", t.value if t.value is not None else None)
        if acc is None and t.intermediate_values:
            acc = t.intermediate_values[max(t.intermediate_values)]
        out.append(
            {
                "study": study.study_name,
                "number": t.number,
                "epochs": _epochs(t),
                "images": _epochs(t) * num_train,
                "val_acc": None if acc is None else float(acc),
                "full_budget": full,
                "params": t.params,
            }
        )
    return out


def _pipeline(
    method: str, seed: int, cfg: dict[str, Any], data: Any, state: Path, device: str
) -> list:
    from jointnas.runs.pipeline import RunConfig, run
    from jointnas.storage.layout import linked_study

    budget_epochs = cfg["full_trainings"] * cfg["epochs"]
    finals = cfg["final_top"] * cfg["epochs"]
    fix = _fix(method, cfg)
    config = RunConfig(
        storage=f"sqlite:///{state}/study.db",
        study_name="eq",
        dataset=f"fashion-mnist:{cfg['train_images']}",
        max_mflops=cfg["max_mflops"],
        trials=(budget_epochs - finals) // cfg["coarse_epochs"],
        epochs=cfg["coarse_epochs"],
        schedule_epochs=cfg["epochs"],
        final_top=cfg["final_top"],
        final_epochs=cfg["epochs"],
        seed=seed,
        device=device,
        out=str(state / "out"),
        space_options=None if fix is None else {"fix": fix},
        heartbeat=None,
    )
    study = run(config, data=data, progress=False)
    final = linked_study(study, "final")
    if final is None:
        raise SystemExit(
            f"{method}: {config.trials} coarse trainings are too few for a predictor; "
            "give it more --full-trainings or fewer --coarse-epochs"
        )
    done = trainings(study, data.num_train, cfg["epochs"])
    return done + trainings(final, data.num_train, cfg["epochs"])


def _baseline(
    method: str, seed: int, cfg: dict[str, Any], data: Any, state: Path, device: str
) -> list:
    import optuna

    from jointnas.constraints import Limits
    from jointnas.evaluators import TrainFromScratch
    from jointnas.runs.objective import Objective, record_constraints

    space = _space(method, cfg)
    limits = Limits(mflops=cfg["max_mflops"])
    evaluator = TrainFromScratch(data=data, epochs=cfg["epochs"], device=device)
    objective = Objective(space=space, evaluator=evaluator, limits=limits, seed=seed, dedupe=False)
    budget = cfg["full_trainings"] * cfg["epochs"] * data.num_train

    def train_if_feasible(trial: optuna.Trial) -> float:
        values = objective.constraint(space.suggest(trial))
        if any(v > 0 for v in values):  # over the limit: not trained, costs nothing
            record_constraints(trial, list(limits.active()), values)
            return 0.0
        return objective(trial)

    def spent(study: optuna.Study) -> int:
        return sum(_epochs(t) for t in study.get_trials(deepcopy=False)) * data.num_train

    def stop(study: optuna.Study, _trial: Any) -> None:
        if spent(study) >= budget:
            study.stop()

    sampler, pruner = {
        "tpe-hyperband": (
            optuna.samplers.TPESampler(seed=seed, multivariate=True),
            optuna.pruners.HyperbandPruner(min_resource=1, max_resource=cfg["epochs"]),
        ),
        "gp": (optuna.samplers.GPSampler(seed=seed), optuna.pruners.NopPruner()),
        "random-sh": (
            optuna.samplers.RandomSampler(seed=seed),
            optuna.pruners.SuccessiveHalvingPruner(min_resource=1),
        ),
    }[method]
    study = optuna.create_study(
        storage=f"sqlite:///{state}/study.db",
        study_name="eq",
        direction="maximize",
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    study.optimize(train_if_feasible, callbacks=[stop])
    return trainings(study, data.num_train, cfg["epochs"])


def job(
    method: str, seed: int, cfg: dict[str, Any], device: str = "cpu", state: str | None = None
) -> dict[str, Any]:
    """Search with ``method`` on ``device``, then retrain its answer and score it on the test
    set. ``state``: the folder of the searches' storages (default ``STATE``)."""
    import optuna
    import torch

    from jointnas.evaluators import TrainFromScratch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    state_dir = (Path(state) if state else STATE) / f"{method}_s{seed}"
    if state_dir.exists():  # a search killed mid-way: start it over (see the docstring)
        shutil.rmtree(state_dir)
    state_dir.mkdir(parents=True)
    data = fashion_split(cfg["train_images"])
    t0 = time.perf_counter()
    search = _pipeline if method.startswith("pipeline") else _baseline
    done = search(method, seed, cfg, data, state_dir, device)
    search_s = time.perf_counter() - t0
    full = [d for d in done if d["full_budget"] and d["val_acc"] is not None]
    best = max(full, key=lambda d: d["val_acc"])
    space = _space(method, cfg)
    candidate = space.decode(best["params"])
    held = fashion_split(cfg["train_images"], test=True)  # the only read of the test set
    retrain = TrainFromScratch(data=held, epochs=cfg["epochs"], device=device)
    test = []
    for s in range(cfg["retrain_seeds"]):
        test.append(float(retrain.evaluate(space, candidate, seed=10_000 + s).value))
    return {
        "method": method,
        "seed": seed,
        "trainings": done,
        "answer": best,
        "test_acc": test,
        "search_seconds": round(search_s, 1),
        "device": device,
        "seconds": round(time.perf_counter() - t0, 1),
        "cfg": cfg,
        "machine": _common.machine_facts(),
    }


def main() -> None:
    global RUNS  # --out: the workers get it as an argument
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10, help="the full training budget")
    parser.add_argument("--train-images", type=int, default=10_000)
    parser.add_argument("--full-trainings", type=int, default=15, help="compute per method")
    parser.add_argument("--coarse-epochs", type=int, default=2)
    parser.add_argument("--final-top", type=int, default=3)
    parser.add_argument("--retrain-seeds", type=int, default=2)
    parser.add_argument("--max-mflops", type=float, default=2.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (GPU check script)")
    parser.add_argument("--out", default=str(RUNS), help="folder of the per-search results")
    parser.add_argument("--state", default=str(STATE), help="folder of the searches' storages")
    parser.add_argument("--report", action="store_true", help="only aggregate stored jobs")
    parser.add_argument("--stem", default="bench_equal_compute")
    parser.add_argument("--results", default=str(_common.RESULTS), help="folder of the report")
    args = parser.parse_args()
    RUNS = Path(args.out)
    methods = args.methods.split(",")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    cfg = {
        k: getattr(args, k)
        for k in (
            "epochs",
            "train_images",
            "full_trainings",
            "coarse_epochs",
            "final_top",
            "retrain_seeds",
            "max_mflops",
        )
    }
    if not args.report:
        todo = []
        for seed in range(args.seeds):
            for m in methods:
                path = RUNS / f"{m}_s{seed}.json"
                if not path.is_file():
                    todo.append((m, seed))
                else:
                    stored = json.loads(path.read_text())
                    kind = stored.get("device", "cpu").split(":")[0]
                    if stored["cfg"] != cfg or kind != args.device.split(":")[0]:
                        raise SystemExit(
                            f"{path} was made with other settings or on another device: "
                            "move it away"
                        )
        print(f"{len(todo)} searches to run on {args.jobs} process(es)", flush=True)
        RUNS.mkdir(parents=True, exist_ok=True)
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(job, m, s, cfg, args.device, args.state) for m, s in todo]
            for f in as_completed(futures):
                r = f.result()
                (RUNS / f"{r['method']}_s{r['seed']}.json").write_text(json.dumps(r))
                print(
                    f"{r['method']:20s} s{r['seed']}: val {r['answer']['val_acc']:.4f}, test "
                    f"{', '.join(f'{a:.4f}' for a in r['test_acc'])}, {r['seconds']:.0f} s",
                    flush=True,
                )
    from _equal_compute_report import report

    report(RUNS, methods, args.seeds, cfg, args.stem, Path(args.results))


if __name__ == "__main__":
    main()
