"""The data path's costs: streaming vs a plain DataLoader loop, in-memory augmentation, peak RSS.

Three measurements (``--only stream,memory,rss``; default all), each against a goal:

* **stream**: a folder of ``--stream-images`` 256 px JPEGs (``make_image_folder``), the
  ``--stream-space``'s smallest network trained at ``--stream-resolution`` px, batch 64.
  ``ours`` is ``train(...)`` on ``load_dataset(folder, mode="stream", augment="rrc-flip")``
  (its own train images/s, evaluation excluded); ``plain`` is the loop a user would write: a
  ``DataLoader`` over a Dataset that decodes each file fully with Pillow and applies the same
  random-resized crop (same scale range) + flip, shuffled, same workers and prefetch, then
  normalise, forward, backward, SGD step on an identically built model (channels_last like the
  trainer, so the two differ in the data path only). Both read the same number of steps, are
  timed over the training steps only, and run once untimed first (workers started, kernels
  built). Goal: ours / plain >= 0.9 (median over alternating repeats).
* **memory**: Fashion-MNIST (``fashion-mnist:<--memory-images>``; mnist5k where its files are
  absent, said in the output), one fixed mid-size ``fbnetv3-small`` network at its resolution,
  one epoch; augment policy ``none`` vs the default ``crop-flip`` vs ``crop-flip`` +
  RandAugment at 0.5. Goal: default / none >= 0.8.
* **rss**: ``jointnas run`` on ``--rss-images`` 256 px JPEGs with the fbnetv3-imagenet space as a
  subprocess, its process tree's memory sampled every 0.2 s, beside the old float32 in-memory
  loader's N*3*224*224*4 bytes. Goal: the tree's peak <= 2 GiB. The same run on
  ``--rss-baseline-images`` (streamed) shows how much of the peak is the network's own
  (activations at 224-272 px), which no data path can save.

Results: ``benchmarks/results/<stem>.json`` and ``<stem>.md``. Generated folders live in
``--state`` (default ``benchmarks/state``, git-ignored) and are reused.

    python benchmarks/bench_data.py [--only stream,memory,rss] [--seed 0] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common
import _proctree
import make_image_folder
import numpy as np
import torch
from _plain_loop import PlainFolder, plain_pass

from jointnas.errors import DatasetError
from jointnas.spaces import get_space
from jointnas.spaces.recipe import Recipe
from jointnas.training import streaming
from jointnas.training.augment import POLICIES, Augment
from jointnas.training.data import Dataset, load_dataset, memory_budget
from jointnas.training.trainer import train

MEASUREMENTS = ("stream", "memory", "rss")
GOALS = {"stream": 0.9, "memory": 0.8, "rss": 2 * 2**30}
#: the memory measurement's network: fixed here so reruns compare like with like (~1 MFLOP)
MID_ARCH = {
    "resolution": 28,
    "stem_width": 8,
    "s1_kernel": 3,
    "s1_width": 8,
    "s1_depth": 1,
    "s2_kernel": 3,
    "s2_expansion": 3,
    "s2_width": 24,
    "s2_depth": 2,
    "s3_kernel": 3,
    "s3_expansion": 4,
    "s3_width": 32,
    "s3_depth": 2,
    "s4_kernel": 3,
    "s4_expansion": 4,
    "s4_width": 48,
    "s4_depth": 1,
}
MiB = 2**20


def folder_name(n: int) -> str:
    """``jpeg2k`` for 2000 images, ``jpeg20k`` for 20000, ``jpeg64`` for 64."""
    return f"jpeg{n // 1000}k" if n % 1000 == 0 else f"jpeg{n}"


# -- stream ----------------------------------------------------------------------------------


def bench_stream(args: argparse.Namespace) -> dict[str, Any]:
    """Streaming trainer vs the plain DataLoader loop on one JPEG folder (module docstring)."""
    folder = make_image_folder.ensure_folder(
        args.state / folder_name(args.stream_images), n=args.stream_images, seed=args.seed
    )
    workers = args.loader_workers
    data = load_dataset(folder, mode="stream", augment="rrc-flip", workers=workers, seed=args.seed)
    space = get_space(args.stream_space)
    arch = space.decode(space.smallest_params()).arch
    res, bs = args.stream_resolution, 64
    steps = args.steps or math.ceil(data.num_train / bs)
    pick = np.random.default_rng(args.seed).permutation(data.train_idx)[: steps * bs]
    plain_set = PlainFolder(
        [data.items.files[i] for i in pick], [int(data.items.labels[i]) for i in pick], res
    )
    loader = torch.utils.data.DataLoader(
        plain_set,
        batch_size=bs,
        shuffle=True,
        num_workers=workers,
        pin_memory=False,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        generator=torch.Generator().manual_seed(args.seed),
    )
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in (data.mean, data.std))

    def build() -> torch.nn.Module:
        return space.build_model(
            arch, num_classes=data.num_classes, in_channels=data.in_channels, seed=args.seed
        )

    def ours() -> float:
        result = train(
            build(), Recipe(), data, epochs=1, seed=args.seed, resolution=res,
            batch_size=bs, bn_recalibration=0, max_steps_per_epoch=steps, device="cpu",
        )  # fmt: skip
        return result.train_images_per_s

    def plain() -> float:
        return plain_pass(build(), loader, mean, std)

    ours(), plain()  # untimed: workers started, kernels built for this shape
    runs = alternate({"ours": ours, "plain": plain}, args.repeats)
    ratio = statistics.median(runs["ours"]) / statistics.median(runs["plain"])
    rows = [
        {"loop": k, "images_per_s": statistics.median(v), "runs": _round(v)}
        for k, v in runs.items()
    ]
    return {
        "rows": rows,
        "ratio": ratio,
        "goal": f"ours / plain >= {GOALS['stream']}",
        "met": ratio >= GOALS["stream"],
        "settings": {
            "folder": str(folder), "images": args.stream_images, "train_split": data.num_train,
            "network": f"{args.stream_space} smallest", "resolution": res, "batch_size": bs,
            "steps": steps, "loader_workers": workers,
        },
    }  # fmt: skip


def alternate(kinds: dict[str, Any], repeats: int) -> dict[str, list[float]]:
    """Each callable ``repeats`` times, interleaved, the first rotating per repeat (so load
    changes and warm caches hit every kind alike)."""
    names = list(kinds)
    runs: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeats):
        for k in names[r % len(names) :] + names[: r % len(names)]:
            runs[k].append(kinds[k]())
            print(f"  repeat {r + 1}: {k} {runs[k][-1]:.0f} images/s", file=sys.stderr)
    return runs


def _round(values: list[float]) -> list[float]:
    return [round(v, 1) for v in values]


# -- memory ----------------------------------------------------------------------------------


def bench_memory(args: argparse.Namespace) -> dict[str, Any]:
    """What on-device crop/flip (and RandAugment) cost an in-memory set, vs no augmentation."""
    source, note = f"fashion-mnist:{args.memory_images}", ""
    try:
        data = load_dataset(source, seed=args.seed)
    except DatasetError as e:
        note = f"Fashion-MNIST unavailable ({str(e).splitlines()[0]}): used mnist5k"
        source, data = "mnist5k", load_dataset("mnist5k", seed=args.seed)
        print(note, file=sys.stderr)
    space = get_space("fbnetv3-small")
    arch = space.decode({**space.smallest_params(), **MID_ARCH}).arch
    task = {"num_classes": data.num_classes, "in_channels": data.in_channels}
    mflops = space.cost(arch, **task).flops / 1e6
    configs = {
        "none": (POLICIES["none"], Recipe()),
        "crop-flip (default)": (POLICIES["crop-flip"], Recipe()),
        "crop-flip + RandAugment 0.5": (POLICIES["crop-flip"], Recipe(augment=0.5)),
    }

    def runner(
        policy: Augment, recipe: Recipe, d: Dataset = data, steps: int | None = args.memory_steps
    ) -> Callable[[], float]:
        """A fresh-model training of one epoch on ``d`` under ``policy``: its images/s."""
        view = d.with_augment(policy)

        def run() -> float:
            model = space.build_model(arch, **task, seed=args.seed)
            result = train(
                model, recipe, view, epochs=1, seed=args.seed, resolution=arch.resolution,
                bn_recalibration=0, device="cpu", max_steps_per_epoch=steps,
            )  # fmt: skip
            return result.train_images_per_s

        return run

    warm = data.subset(train=256, val=64)
    for policy, recipe in configs.values():  # first calls pay one-time initialisation
        runner(policy, recipe, warm, 2)()
    runs = alternate({k: runner(*v) for k, v in configs.items()}, args.repeats)
    base = statistics.median(runs["none"])
    rows = [
        {
            "augment": k,
            "images_per_s": statistics.median(v),
            "vs_none": statistics.median(v) / base,
            "runs": _round(v),
        }
        for k, v in runs.items()
    ]
    ratio = rows[1]["vs_none"]
    return {
        "rows": rows,
        "ratio": ratio,
        "goal": f"default (crop-flip) / none >= {GOALS['memory']}",
        "met": ratio >= GOALS["memory"],
        "note": note,
        "arch": MID_ARCH,
        "settings": {
            "dataset": source, "train_split": data.num_train, "mflops": round(mflops, 3),
            "network": "fbnetv3-small MID_ARCH (arch in the JSON)", "batch_size": 128,
            "resolution": arch.resolution, "torch_threads": torch.get_num_threads(),
            "steps": args.memory_steps or math.ceil(data.num_train / 128),
        },
    }  # fmt: skip


# -- rss -------------------------------------------------------------------------------------


def rss_once(folder: Path, args: argparse.Namespace, extra: list[str]) -> dict[str, Any]:
    """One ``jointnas run`` on ``folder`` (options: see the module docstring), its tree's
    memory sampled every 0.2 s; decoded folders are never cached (no GBs in ~/.cache)."""
    with tempfile.TemporaryDirectory(prefix="bench_rss_") as tmp:
        cmd = [
            sys.executable, "-m", "jointnas.cli", "run", "--dataset", str(folder),
            "--space", "fbnetv3-imagenet", "--trials", "2", "--epochs", "1",
            "--max-steps-per-epoch", str(args.rss_steps), "--batch-size", str(args.rss_batch_size),
            "--stop-after", "coarse", "--storage", f"{tmp}/rss.log", "--study", "rss",
            "--out", f"{tmp}/out", "--no-progress", "--seed", str(args.seed),
            "--max-mflops", str(args.rss_max_mflops), "--device", "cpu", *extra,
        ]  # fmt: skip
        print(f"  running: {shlex.join(cmd)}", file=sys.stderr)
        rc, wall, peak = _proctree.run_sampled(
            cmd,
            log=Path(tmp) / "run.log",
            env={**os.environ, "JOINTNAS_CACHE_DIR": "off"},
            interval=0.2,
            timeout=args.rss_timeout,
        )
        tail = (Path(tmp) / "run.log").read_text().splitlines()[-15:]
    out = {"command": shlex.join(cmd), "exit": rc, "wall_s": round(wall, 1), "peak": peak}
    return {**out, "children": peak.max_children, "output_tail": tail}


def bench_rss(args: argparse.Namespace) -> dict[str, Any]:
    """Peak memory of a real streamed search on 20,000 JPEGs, and of the same on a few."""
    n, nb = args.rss_images, args.rss_baseline_images
    folder = make_image_folder.ensure_folder(args.state / folder_name(n), n=n, seed=args.seed)
    space = get_space("fbnetv3-imagenet")
    largest = space.decode(space.largest_params()).arch.resolution  # the CLI's stored size
    decoded = n * 3 * largest * largest
    runs = {f"{n} images": rss_once(folder, args, [])}
    if nb:  # the same run on a few images, streamed: the model's and framework's own share
        small = make_image_folder.ensure_folder(args.state / folder_name(nb), n=nb, seed=args.seed)
        runs[f"{nb} images, --data stream"] = rss_once(small, args, ["--data", "stream"])
    full = runs[f"{n} images"]
    peak = full["peak"]
    rows = [
        {"what": what, **{f"MiB, {k}": getattr(r["peak"], attr) / MiB for k, r in runs.items()}}
        for what, attr in (
            ("main process peak RSS (VmHWM)", "main_hwm"),
            ("tree peak RSS sum (sampled)", "tree_rss"),
            ("tree peak PSS sum (sampled)", "tree_pss"),
            ("tree upper bound (sum of VmHWMs)", "tree_hwm_bound"),
        )
    ]
    first = f"MiB, {n} images"
    rows += [
        {"what": "old float32 in-memory set (N*3*224*224*4)", first: n * 3 * 224 * 224 * 4 / MiB},
        {"what": f"uint8 set at {largest} px (auto's size test)", first: decoded / MiB},
    ]
    for r in runs.values():
        r["peak"] = {k: v for k, v in vars(r["peak"]).items() if k != "child_hwm"}
    return {
        "rows": rows,
        "goal": f"tree peak RSS (sampled sum, or main VmHWM if higher) <= {GOALS['rss'] / MiB:.0f}"
        " MiB",
        "met": full["exit"] == 0 and max(peak.tree_rss, peak.main_hwm) <= GOALS["rss"],
        "exit_status": full["exit"],
        "wall_s": full["wall_s"],
        "data_mode_predicted": "stream" if decoded > memory_budget() else "memory",
        "data_mode_observed": "stream" if full["children"] > 0 else "memory",
        "max_child_processes": full["children"],
        "memory_budget_bytes": memory_budget(),
        "psutil": _proctree.psutil is not None,
        "runs": runs,
        "settings": {
            "images": n,
            "folder": str(folder),
            "max_mflops": args.rss_max_mflops,
            "batch_size": args.rss_batch_size,
        },
    }


# -- output ----------------------------------------------------------------------------------


def write(args: argparse.Namespace, results: dict[str, Any], facts: dict[str, Any]) -> None:
    """``<stem>.json`` (everything) and ``<stem>.md`` (a table per measurement, goal, met)."""
    args.results.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "benchmarks/bench_data.py", *sys.argv[1:]])
    blob = {"command": command, "seed": args.seed, "machine": facts, "results": results}
    json_path = args.results / f"{args.stem}.json"
    json_path.write_text(json.dumps(blob, indent=2, default=str) + "\n")
    lines = [
        f"# {args.stem}",
        "",
        f"`{command}`",
        "",
        f"Machine: {facts['cpu_model']}, {facts['cpus_usable']} usable cores, torch "
        f"{facts['torch']} ({facts['torch_num_threads']} threads), Python {facts['python']}, "
        f"commit {facts['git_commit']}, {facts['date_utc']}. Seed {args.seed}, "
        f"{args.repeats} repeats (medians).",
    ]
    for name, res in results.items():
        met = "met" if res.get("met") else "NOT met"
        lines += ["", f"## {name}", "", f"Goal: {res['goal']}: **{met}**"]
        if "ratio" in res:
            lines.append(f"(ratio {res['ratio']:.3f})")
        if name == "rss":
            lines.append(
                f"(exit status {res['exit_status']}, {res['wall_s']} s; data mode "
                f"{res['data_mode_observed']} with {res['max_child_processes']} loader "
                f"processes, predicted {res['data_mode_predicted']})"
            )
        if res.get("note"):
            lines.append(f"Note: {res['note']}")
        rows = [{k: v for k, v in r.items() if k != "runs"} for r in res["rows"]]
        lines += ["", _common.print_table(rows, list(rows[0])), ""]
        lines.append("Settings: " + ", ".join(f"{k}={v}" for k, v in res["settings"].items()))
    md_path = args.results / f"{args.stem}.md"
    md_path.write_text("\n".join(lines) + "\n")
    print(f"wrote {json_path} and {md_path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default=",".join(MEASUREMENTS), help="comma-separated subset")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--stem", default="bench_data", help="results file name")
    p.add_argument("--results", type=Path, default=_common.RESULTS, help="output folder")
    p.add_argument("--state", type=Path, default=_common.ROOT / "benchmarks" / "state")
    p.add_argument("--stream-images", type=int, default=2000)
    p.add_argument("--stream-space", default="fbnetv3-small")
    p.add_argument("--stream-resolution", type=int, default=64)
    p.add_argument("--loader-workers", type=int, default=streaming.default_workers())
    p.add_argument("--steps", type=int, default=None, help="stream steps (default: an epoch)")
    p.add_argument("--memory-images", type=int, default=10_000)
    p.add_argument("--memory-steps", type=int, default=None, help="default: a whole epoch")
    p.add_argument("--rss-images", type=int, default=20_000)
    p.add_argument(
        "--rss-baseline-images", type=int, default=100,
        help="also run on this many images (streamed) to show the model's own share; 0: skip",
    )  # fmt: skip
    p.add_argument("--rss-steps", type=int, default=3, help="--max-steps-per-epoch of the run")
    p.add_argument("--rss-batch-size", type=int, default=16, help="--batch-size of the run")
    p.add_argument(
        "--rss-max-mflops", type=float, default=250.0,
        help="admits fbnetv3-imagenet's cheaper candidates (smallest ~130 MFLOPs, 10 classes)",
    )  # fmt: skip
    p.add_argument("--rss-timeout", type=float, default=3600.0, help="seconds before a kill")
    args = p.parse_args()
    only = [m.strip() for m in args.only.split(",") if m.strip()]
    unknown = sorted(set(only) - set(MEASUREMENTS))
    if unknown:
        p.error(f"--only: unknown {unknown}; choose from {MEASUREMENTS}")
    facts = {**_common.machine_facts(), "cpu_model": _proctree.cpu_model()}
    results: dict[str, Any] = {}
    for name in MEASUREMENTS:
        if name in only:
            print(f"[{name}]", file=sys.stderr)
            t0 = time.perf_counter()
            results[name] = globals()[f"bench_{name}"](args)
            results[name]["seconds"] = round(time.perf_counter() - t0, 1)
    write(args, results, facts)


if __name__ == "__main__":
    main()
