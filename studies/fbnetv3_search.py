"""A plain Optuna study over FBNetV3's joint (architecture, recipe) space.

Copy this file and edit it: the objective is the whole method in five lines
(suggest -> cost -> constraint -> build -> train). Any Optuna sampler works; Optuna 5 samplers
read the constraint set with ``trial.set_constraint``, and infeasible candidates are never
trained (they are pruned before building the model).

    python studies/fbnetv3_search.py --trials 10 --epochs 2
    optuna-dashboard sqlite:///studies.db
"""

from __future__ import annotations

import argparse

import optuna

import jointnas


def make_objective(
    space: jointnas.FBNetV3Space, data: jointnas.Dataset, *, max_mflops: float, epochs: int
):
    def objective(trial: optuna.Trial) -> float:
        candidate = space.decode(space.suggest(trial))
        c = jointnas.cost(
            candidate.arch, num_classes=data.num_classes, in_channels=data.in_channels
        )
        trial.set_user_attr("mflops", c.mflops)
        trial.set_user_attr("params", c.params)
        trial.set_constraint("mflops", c.mflops - max_mflops)
        if c.mflops > max_mflops:
            raise optuna.TrialPruned(f"{c.mflops:.2f} MFLOPs is over the limit; not trained")
        model = jointnas.build_model(
            candidate.arch, data.num_classes, data.in_channels, seed=trial.number
        )
        result = jointnas.train(
            model,
            candidate.recipe,
            data,
            epochs=epochs,
            seed=trial.number,
            trial=trial,
            resolution=candidate.arch.resolution,
        )
        return result.final_acc

    return objective


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default="sqlite:///studies.db")
    parser.add_argument("--study", default="fbnetv3-tpe")
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--max-mflops", type=float, default=2.0)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    space = jointnas.FBNetV3Space(preset="small")
    data = jointnas.load_dataset(args.dataset, seed=args.seed)
    study = optuna.create_study(
        study_name=args.study,
        storage=args.storage,
        direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=args.seed, multivariate=True),
    )
    study.optimize(
        make_objective(space, data, max_mflops=args.max_mflops, epochs=args.epochs),
        n_trials=args.trials,
    )
    print(
        f"best val acc {study.best_value:.4f} with {study.best_trial.user_attrs['mflops']:.3f}"
        f" MFLOPs: {study.best_params}"
    )


if __name__ == "__main__":
    main()
