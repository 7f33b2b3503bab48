"""A multi-objective Optuna study: maximise accuracy AND minimise MFLOPs, one Pareto front.

Instead of one search per resource limit, NSGA-II searches FBNetV3's joint (architecture,
recipe) space for the whole trade-off at once; ``study.best_trials`` is the front of
non-dominated (accuracy, MFLOPs) pairs. The MFLOPs are exact and analytic (``jointnas.cost``), so
``--max-mflops`` can cut the space: a candidate over it is recorded with ``trial.set_constraint``
and pruned before it is built, never trained.

    python studies/multi_objective.py --trials 16 --population 8 --epochs 1
    python studies/multi_objective.py --max-mflops 2 --study pareto-2mflops
    optuna-dashboard sqlite:///studies.db
"""

from __future__ import annotations

import argparse

import optuna
import pandas as pd

import jointnas

SHOWN = ("resolution", "stem_width", "optimizer", "lr")


def make_objective(
    space: jointnas.FBNetV3Space,
    data: jointnas.Dataset,
    *,
    epochs: int,
    seed: int,
    max_mflops: float | None,
):
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        candidate = space.decode(space.suggest(trial))
        c = jointnas.cost(
            candidate.arch, num_classes=data.num_classes, in_channels=data.in_channels
        )
        trial.set_user_attr("mflops", c.mflops)
        trial.set_user_attr("params", c.params)
        if max_mflops is not None:
            trial.set_constraint("mflops", c.mflops - max_mflops)
            if c.mflops > max_mflops:
                raise optuna.TrialPruned(f"{c.mflops:.2f} MFLOPs is over the cap; not trained")
        model = jointnas.build_model(
            candidate.arch, data.num_classes, data.in_channels, seed=seed + trial.number
        )
        result = jointnas.train(
            model,
            candidate.recipe,
            data,
            epochs=epochs,
            seed=seed + trial.number,
            resolution=candidate.arch.resolution,
        )  # no trial=: Optuna cannot prune multi-objective trials on intermediate values
        return result.final_acc, c.mflops

    return objective


def front_table(study: optuna.Study) -> pd.DataFrame:
    """The Pareto front (``study.best_trials``), cheapest first."""
    rows = [
        {
            "trial": t.number,
            "val_acc": t.values[0],
            "mflops": t.values[1],
            "params": t.user_attrs["params"],
            **{k: t.params[k] for k in SHOWN},
        }
        for t in sorted(study.best_trials, key=lambda t: t.values[1])
    ]
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default="sqlite:///studies.db")
    parser.add_argument("--study", default="fbnetv3-pareto")
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--population", type=int, default=8, help="NSGA-II population size")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-mflops", type=float, default=None, help="optional hard cap")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    space = jointnas.FBNetV3Space(preset="small")
    data = jointnas.load_dataset(args.dataset, seed=args.seed)
    study = optuna.create_study(
        study_name=args.study,
        storage=args.storage,
        directions=["maximize", "minimize"],
        load_if_exists=True,
        sampler=optuna.samplers.NSGAIISampler(population_size=args.population, seed=args.seed),
    )
    study.optimize(
        make_objective(space, data, epochs=args.epochs, seed=args.seed, max_mflops=args.max_mflops),
        n_trials=args.trials,
    )
    front = front_table(study)
    print(f"Pareto front of {args.study!r}: {len(front)} of {len(study.trials)} trials")
    if len(front):
        print(front.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    main()
