"""AutoTrain transfer and EMA on/off across the FBNetV3, RegNet and EfficientNet spaces.

FBNetV3 finds one training recipe for one architecture (AutoTrain: the JointNAS pipeline with
the architecture pinned) and reports that the recipe generalises to other architectures, and
that EMA of the weights helps everywhere. This measures both here:

1. AutoTrain on a *source* architecture (the first ``fbnetv3-small`` draw in the FLOPs band):
   ``jointnas.runs.pipeline.run`` with ``fix_arch`` (coarse trainings, predictor, fine search, one
   final training); its best final recipe is the transferred recipe.
2. ``--per-space`` architectures of each of ``fbnetv3-small``, ``regnet`` and ``efficientnet``
   drawn in the band (``designs.edf.draw_in_band``, seeded), each trained ``--seeds`` times for
   ``--epochs`` epochs with: the default recipe (``Recipe()``: SGD, lr 0.1, nothing else on),
   the default with EMA, and the AutoTrain recipe with EMA off and on.

Run: ``python benchmarks/bench_recipe_transfer.py`` (defaults below; 5.5 min on 2 cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path
from statistics import mean

import _common  # noqa: F401  (puts the repository root on sys.path)
from _common import finish

from jointnas.designs.edf import draw_in_band
from jointnas.evaluators import TrainFromScratch
from jointnas.runs.config import RunConfig
from jointnas.runs.pipeline import run
from jointnas.spaces import get_space
from jointnas.spaces.base import Candidate
from jointnas.spaces.recipe import Recipe
from jointnas.training.data import load_dataset

SPACES = ("fbnetv3-small", "regnet", "efficientnet")


def autotrain(arch_params: dict, args: argparse.Namespace, workdir: Path, data) -> Recipe:
    """The recipe the pipeline finds for ``arch_params`` with the architecture pinned."""
    config = RunConfig(
        storage=str(workdir / "autotrain.log"),
        space=SPACES[0],
        dataset=args.dataset,
        max_mflops=args.band[1],
        trials=args.autotrain_trials,
        epochs=args.autotrain_epochs,
        seed=args.seed,
        fine_generations=5,
        final_top=1,
        final_epochs=args.epochs,
        out=str(workdir / "autotrain-out"),
        fix_arch=arch_params,
        heartbeat=None,
        device=args.device,
    )
    run(config, data=data, progress=False)
    best = json.loads((workdir / "autotrain-out" / "best.json").read_text())
    return Recipe(**best["recipe"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="fashion-mnist:5000")
    parser.add_argument("--band", default="1,3", help="MFLOPs band LO,HI of every architecture")
    parser.add_argument("--per-space", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--autotrain-trials", type=int, default=12)
    parser.add_argument("--autotrain-epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    parser.add_argument("--stem", default="bench_recipe_transfer")
    args = parser.parse_args()
    args.band = tuple(float(v) for v in args.band.split(","))

    data = load_dataset(args.dataset, seed=args.seed)
    task = {"num_classes": data.num_classes, "in_channels": data.in_channels}
    archs = []
    for name in SPACES:
        space = get_space(name)
        drawn = draw_in_band(space, args.band, n=args.per_space, task=task, seed=args.seed)
        archs += [(name, space, p) for p in drawn]

    with tempfile.TemporaryDirectory() as tmp:
        found = autotrain(archs[0][2], args, Path(tmp), data)
    print(f"AutoTrain recipe (source: {SPACES[0]} #0): {found}")
    recipes = {
        "default": Recipe(),
        "default+ema": Recipe(ema=True),
        "autotrain ema off": dataclasses.replace(found, ema=False),
        "autotrain ema on": dataclasses.replace(found, ema=True),
    }

    trainer = TrainFromScratch(data=data, epochs=args.epochs, device=args.device)
    rows = []
    for index, (name, space, arch_params) in enumerate(archs):
        # the recipe part of the params does not matter: only .arch is used
        full = {**space.smallest_params(), **arch_params}
        arch = space.decode(full).arch
        cost = space.cost(arch, **task)
        row = {
            "arch": f"{name} #{index % args.per_space}" + (" (source)" if index == 0 else ""),
            "MFLOPs": round(float(cost.mflops), 3),
            "params": int(cost.params),
        }
        for label, recipe in recipes.items():
            accs = []
            for s in range(args.seeds):
                result = trainer.evaluate(space, Candidate(arch, recipe), seed=args.seed + s)
                accs.append(result.value)
            row[label] = round(mean(accs), 4)
        row["autotrain - default"] = round(row["autotrain ema off"] - row["default"], 4)
        row["ema on - off"] = round(row["autotrain ema on"] - row["autotrain ema off"], 4)
        rows.append(row)
        print(row, flush=True)
    means = {"arch": "mean", "MFLOPs": "", "params": ""}
    for key in [*recipes, "autotrain - default", "ema on - off"]:
        means[key] = round(mean(r[key] for r in rows), 4)
    rows.append(means)
    settings = {**vars(args), "autotrain_recipe": dataclasses.asdict(found)}
    finish(args.stem, rows, settings)


if __name__ == "__main__":
    main()
