"""FBNetV3's AutoTrain: a FIXED architecture, only the training recipe is searched.

FBNetV3 shows that a searched recipe alone lifts a given network's accuracy. Here the
architecture is pinned (default: the small preset's largest candidate; ``--fix-arch FILE`` takes
a JSON params dict of the architecture keys, or a ``best.json`` of ``jointnas run``, whose
"params" it reads; recipe keys in the file are ignored). The recipe's distributions are a
``DistributionSpace`` of their own, searched by ``jointnas.CoarseSampler``: quasi-random recipes
first, then the recipe its predictor ranks best. Every trial builds the same network (same seed),
so accuracy differences come from the recipe.

    python studies/autotrain.py --trials 12 --epochs 2
    python studies/autotrain.py --fix-arch jointnas-out/best.json --study autotrain-best
    optuna-dashboard sqlite:///studies.db
"""

from __future__ import annotations

import argparse
from typing import Any

import optuna
import pandas as pd

import jointnas
from jointnas.samplers.coarse import SOURCE_ATTR
from jointnas.spaces.base import DistributionSpace
from jointnas.storage.candidates import read_arch as read_arch_file


def read_arch(path: str | None, space: jointnas.FBNetV3Space) -> dict[str, Any]:
    """The architecture params: ``space.largest_params()``'s, or those of a JSON file.

    Raises ValueError with one line saying what is wrong with the file.
    """
    if path is None:
        names = [k for k in space.distributions if k not in space.recipe_names]
        return {k: v for k, v in space.largest_params().items() if k in names}
    return read_arch_file(path, space)  # raises a ValueError (ConfigError) of one line


def make_objective(
    space: jointnas.FBNetV3Space,
    recipe_space: DistributionSpace,
    arch: dict[str, Any],
    data: jointnas.Dataset,
    *,
    epochs: int,
    seed: int,
):
    def objective(trial: optuna.Trial) -> float:
        candidate = space.decode({**arch, **recipe_space.suggest(trial)})
        # One seed for all trials: the same initial weights and batches for every recipe.
        model = jointnas.build_model(candidate.arch, data.num_classes, data.in_channels, seed=seed)
        result = jointnas.train(
            model,
            candidate.recipe,
            data,
            epochs=epochs,
            seed=seed,
            trial=trial,
            resolution=candidate.arch.resolution,
        )
        trial.set_user_attr("val_acc_curve", list(result.val_acc))
        return result.final_acc

    return objective


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default="sqlite:///studies.db")
    parser.add_argument("--study", default="fbnetv3-autotrain")
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--fix-arch", default=None, metavar="FILE", help="JSON arch params")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--startup", type=int, default=6, help="quasi-random recipes first")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    space = jointnas.FBNetV3Space(preset="small")
    try:
        arch = read_arch(args.fix_arch, space)
    except ValueError as exc:
        parser.error(str(exc))
    recipe_space = DistributionSpace({k: space.distributions[k] for k in space.recipe_names})
    data = jointnas.load_dataset(args.dataset, seed=args.seed)
    # Cost depends on the architecture alone; any recipe completes the params for decode.
    fixed = space.decode({**space.largest_params(), **arch}).arch
    c = jointnas.cost(fixed, num_classes=data.num_classes, in_channels=data.in_channels)
    study = optuna.create_study(
        study_name=args.study,
        storage=args.storage,
        direction="maximize",
        load_if_exists=True,
        sampler=jointnas.CoarseSampler(
            search_space=recipe_space.distributions,
            n_startup_trials=args.startup,
            seed=args.seed,
        ),
    )
    stored = study.user_attrs.get("arch")
    if stored is not None and stored != arch:
        parser.error(f"study {args.study!r} searched another architecture; use another --study")
    study.set_user_attr("arch", arch)
    study.set_user_attr("mflops", c.mflops)
    print(f"fixed architecture: {c.mflops:.3f} MFLOPs, {c.params} params; searching the recipe")
    study.optimize(
        make_objective(space, recipe_space, arch, data, epochs=args.epochs, seed=args.seed),
        n_trials=args.trials,
    )

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    rows = [
        {
            "trial": t.number,
            "val_acc": t.value,
            "source": t.system_attrs.get(SOURCE_ATTR, ""),
            **t.params,
        }
        for t in sorted(done, key=lambda t: -t.value)[:5]
    ]
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"best val acc {study.best_value:.4f} with recipe {study.best_params}")


if __name__ == "__main__":
    main()
