"""When do training recipes matter? Fixed architectures x recipes x training budgets, on
Fashion-MNIST at a scale where seed noise and validation sampling error are measured.

Every small-scale comparison in this repository (1-2 epochs, 2,000-8,000 images, 1,000-2,000
validation images) had differences inside the noise. This study measures, on one task, from
which training budget the choice of recipe changes accuracy by more than seed noise, and how
well a short budget ranks architectures for the longest one (what early-stopped coarse
trainings rely on).

Setting (defaults): Fashion-MNIST's 60,000 training images split once, stratified with seed 0,
into 50,000 for training and 10,000 for validation (binomial sampling error <= 0.004 at 85%
accuracy); ``--train-images`` of the 50,000 are used (the largest the CPU time allows). The
official test set is not touched. Architectures: ``--archs`` seeded draws in a 1-2 MFLOPs band
from three spaces (``designs.edf.draw_in_band``: fbnetv3-small, regnet, efficientnet). Recipes:
``default`` (``Recipe()``: SGD, crop + flip), ``autotrain`` (the recipe AutoTrain found in
``bench_recipe_transfer``, read from its stored result), ``ema`` (default + weight EMA),
``aug-off`` (no crop/flip, no RandAugment), ``aug-medium`` / ``aug-strong`` (RandAugment at
strength 0.5 / 1.0 on top of crop + flip). Budgets: 1, 3, 10 and 20 epochs, each its own
cosine schedule, ``--seeds`` seeds each.

One job = (architecture, recipe, budget, seed), stored as
``results/budget_study/<arch>__<recipe>__e<budget>__s<seed>.json`` and skipped when present;
a killed training resumes from its per-epoch checkpoint (``results/budget_study/ckpt/``, not
committed) to the same result. Jobs run seed-major, short budgets first, so a partial run is a
complete picture at fewer seeds or budgets.

    python benchmarks/bench_budget_study.py [--train-images 20000] [--seeds 2] [--jobs 2]
    python benchmarks/bench_budget_study.py --report

The report (``_budget_report.py``) writes ``results/bench_budget_study.{csv,json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import _common
from _heldout import VAL_FRACTION, fashion_split

RUNS = _common.RESULTS / "budget_study"
TASK = {"num_classes": 10, "in_channels": 1}
BAND = (1.0, 2.0)
#: space -> architectures drawn from it (seed 0)
ARCHS = {"fbnetv3-small": 2, "regnet": 2, "efficientnet": 1}
RECIPES = ("default", "autotrain", "ema", "aug-off", "aug-medium", "aug-strong")
BUDGETS = (1, 3, 10, 20)


def architectures() -> dict[str, tuple[str, dict[str, Any]]]:
    """``name -> (space, arch params)``: the seeded draws of ``ARCHS`` in ``BAND``."""
    from jointnas.designs.edf import draw_in_band
    from jointnas.spaces import get_space

    out = {}
    for space_name, n in ARCHS.items():
        space = get_space(space_name)
        for i, params in enumerate(draw_in_band(space, BAND, n=n, task=TASK, seed=0)):
            out[f"{space_name}-{i}"] = (space_name, params)
    return out


def recipe(name: str) -> tuple[Any, str | None]:
    """The recipe called ``name`` and the base augmentation policy it needs (None: the data's
    default, crop + flip for Fashion-MNIST)."""
    from jointnas.spaces.recipe import Recipe

    if name == "default":
        return Recipe(), None
    if name == "autotrain":
        stored = json.loads((_common.RESULTS / "bench_recipe_transfer.json").read_text())
        return Recipe(**stored["settings"]["autotrain_recipe"]), None
    if name == "ema":
        return Recipe(ema=True), None
    if name == "aug-off":
        return Recipe(), "none"
    if name == "aug-medium":
        return Recipe(augment=0.5), None
    if name == "aug-strong":
        return Recipe(augment=1.0), None
    raise ValueError(f"unknown recipe {name!r}; choose from {RECIPES}")


def _path(arch: str, recipe_name: str, budget: int, seed: int, runs: Path | None = None) -> Path:
    return (runs or RUNS) / f"{arch}__{recipe_name}__e{budget}__s{seed}.json"


def _kind(device: str) -> str:
    """cpu or cuda: results of one kind of device go in one table."""
    return device.split(":")[0]


def job(
    arch: str,
    recipe_name: str,
    budget: int,
    seed: int,
    cfg: dict[str, Any],
    device: str = "cpu",
    runs: str | None = None,
) -> dict:
    """Train one architecture with one recipe for ``budget`` epochs on ``device``; per-epoch
    accuracy. ``runs``: the results folder (its ``ckpt/`` holds the epoch checkpoints)."""
    import torch

    from jointnas.spaces import get_space
    from jointnas.training.augment import POLICIES
    from jointnas.training.trainer import train

    torch.set_num_threads(1)
    space_name, params = architectures()[arch]
    space = get_space(space_name)
    built = space.decode({**space.smallest_params(), **params}).arch
    rec, policy = recipe(recipe_name)
    data = fashion_split(cfg["train_images"])
    if policy is not None:
        data = data.with_augment(POLICIES[policy])
    model = space.build_model(built, **TASK, seed=seed)
    folder = Path(runs) if runs else RUNS
    ckpt = folder / "ckpt" / f"{_path(arch, recipe_name, budget, seed).stem}.pt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = train(
        model,
        rec,
        data,
        epochs=budget,
        seed=seed,
        device=device,
        resolution=getattr(built, "resolution", None),
        checkpoint=ckpt,
    )
    ckpt.unlink(missing_ok=True)
    return {
        "arch": arch,
        "space": space_name,
        "params": params,
        "mflops": float(space.cost(built, **TASK).mflops),
        "recipe": recipe_name,
        "recipe_fields": asdict(rec),
        "policy": policy or "data default",
        "budget": budget,
        "seed": seed,
        "val_acc": [float(a) for a in result.val_acc],
        "final_acc": float(result.final_acc),
        "train_images": budget * data.num_train,
        "val_images": data.num_val,
        "seconds": round(time.perf_counter() - t0, 1),
        "device": device,
        "resumed_epochs": int(getattr(result, "resumed_epochs", 0)),
        "cfg": cfg,
        "machine": _common.machine_facts(),
    }


def todo(
    cfg: dict[str, Any],
    archs: list[str],
    recipes: list[str],
    budgets: list[int],
    seeds: int,
    device: str = "cpu",
) -> list[tuple[str, str, int, int]]:
    """Jobs not stored yet, seed-major and short budgets first; refuses stored jobs made with
    other settings or on another kind of device (they would mix into one table)."""
    out = []
    for seed in range(seeds):
        for budget in sorted(budgets):
            for arch in archs:
                for name in recipes:
                    path = _path(arch, name, budget, seed)
                    if not path.is_file():
                        out.append((arch, name, budget, seed))
                    else:
                        stored = json.loads(path.read_text())
                        if stored["cfg"] != cfg or _kind(stored.get("device", "cpu")) != _kind(
                            device
                        ):
                            raise SystemExit(
                                f"{path} was made with other settings or on another device: "
                                "move it away"
                            )
    return out


def main() -> None:
    global RUNS  # --out: the workers get it as an argument
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-images", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--archs", default=None, help="comma-separated names (default: all)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (GPU check script)")
    parser.add_argument("--out", default=str(RUNS), help="folder of the per-job results")
    parser.add_argument("--report", action="store_true", help="only aggregate the stored jobs")
    parser.add_argument("--stem", default="bench_budget_study")
    args = parser.parse_args()
    RUNS = Path(args.out)
    budgets = [int(b) for b in args.budgets.split(",")]
    recipes = args.recipes.split(",")
    for name in recipes:
        recipe(name)  # unknown names fail here, in one line
    names = list(architectures())
    archs = names if args.archs is None else args.archs.split(",")
    unknown = [a for a in archs if a not in names]
    if unknown:
        raise SystemExit(f"unknown architecture(s) {unknown}; choose from {names}")
    cfg = {
        "train_images": args.train_images,
        "val_fraction": VAL_FRACTION,
        "dataset": "fashion-mnist",
    }
    if not args.report:
        jobs = todo(cfg, archs, recipes, budgets, args.seeds, args.device)
        total_epochs = sum(j[2] for j in jobs)
        print(f"{len(jobs)} trainings ({total_epochs} epochs) to run on {args.jobs} process(es)")
        RUNS.mkdir(parents=True, exist_ok=True)
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(job, *j, cfg, args.device, str(RUNS)) for j in jobs]
            for f in as_completed(futures):
                r = f.result()
                _path(r["arch"], r["recipe"], r["budget"], r["seed"]).write_text(json.dumps(r))
                print(
                    f"{r['arch']:16s} {r['recipe']:10s} e{r['budget']:<3d} s{r['seed']}: "
                    f"val {r['final_acc']:.4f}, {r['seconds']:.0f} s",
                    flush=True,
                )
    from _budget_report import report

    outside = tuple(r for r in recipes if recipe(r)[1] is not None)  # a data policy, not a recipe
    report(RUNS, archs, recipes, budgets, args.seeds, args.stem, vars(args) | cfg, outside)


if __name__ == "__main__":
    main()
