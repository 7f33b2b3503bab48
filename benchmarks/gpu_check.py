"""The data path and trainer on a CUDA GPU, in one run of under 10 minutes.

The CPU benchmarks cannot show what only a GPU exercises (autocast, the uint8 set moved to the
device once, pinned host batches, several search workers sharing one device), and GPU time is
scarce, so everything is one prepared script:

1. **trainer**: an in-memory set (Fashion-MNIST, else mnist5k) on the device: images/s with
   AMP (always on under CUDA) and channels_last on / off; checks that ``data._on(device)`` put
   the uint8 tensors there; the same images exported to a PNG folder and streamed through
   pinned memory, for comparison.
2. **loader**: a 256 px JPEG folder streamed by worker processes vs decoded once into memory
   and augmented on the device, with and without RandAugment.
3. **workers**: ``jointnas run --workers N`` (N = 1, 2, 4) on one GPU and one study: trials
   per minute, over the trials' own span and over the command's wall time.
4. **search**: a short real search (coarse, predictor, fine, final) on the GPU.

``--sections`` picks sections (default: the four above, one run of under 10 minutes). Two more
(``_gpu_scale.py``) take a call of their own each: ``scale-supernet``, the supernet's ranking
tau with 10,000 validation images and its seed-vs-seed ceiling, and ``scale-equal-compute``,
the equal-compute comparison on more images with several searches per GPU (issue 30).

``--tiny`` runs the same code paths on the CPU at toy sizes (a few images, one step) in well
under a minute, so a test can call ``bash benchmarks/gpu_check.sh --tiny``; its results go to
``--out`` (default: a new temporary folder), never over the real ones. Without ``--tiny`` and
without CUDA it exits with status 2 and one line saying so. A section that raises is recorded
with its error, the others still run, and the exit status is 1.

    bash benchmarks/gpu_check.sh            # writes benchmarks/results/gpu_check.{json,md}
    bash benchmarks/gpu_check.sh --tiny     # CPU smoke run, results in a temp folder
    bash benchmarks/gpu_check.sh --sections scale-supernet --out DIR   # one scale section
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import _common
import _gpu_scale
import _proctree
import make_image_folder
import torch
from _gpu_report import write
from bench_data import MID_ARCH, alternate

from jointnas.errors import DatasetError
from jointnas.spaces import get_space
from jointnas.spaces.recipe import Recipe
from jointnas.training.data import Dataset, load_dataset
from jointnas.training.streaming import StreamingDataset
from jointnas.training.trainer import train


@dataclass(frozen=True)
class Sizes:
    """How big each section runs: full on a GPU, tiny on a CPU (the same code either way)."""

    device: str
    source: str  # the in-memory set (mnist5k if Fashion-MNIST is absent)
    batch: int
    steps: int | None  # max_steps_per_epoch of every direct train() call; None: whole epochs
    repeats: int
    jpeg_images: int
    jpeg_size: int
    jpeg_resolution: int
    jpeg_batch: int
    worker_counts: tuple[int, ...]
    worker_trials: int
    search_args: tuple[str, ...]
    timeout_s: float  # per subprocess


FULL = Sizes(
    device="cuda", source="fashion-mnist:10000", batch=128, steps=None, repeats=3,
    jpeg_images=2000, jpeg_size=256, jpeg_resolution=224, jpeg_batch=64,
    worker_counts=(1, 2, 4), worker_trials=12,
    search_args=("--trials", "8", "--epochs", "2", "--fine-generations", "5",
                 "--final-top", "1", "--final-epochs", "4"),
    timeout_s=240,
)  # fmt: skip
TINY = Sizes(
    device="cpu", source="fashion-mnist:200", batch=16, steps=1, repeats=1,
    jpeg_images=60, jpeg_size=64, jpeg_resolution=32, jpeg_batch=8,
    worker_counts=(2,), worker_trials=2,
    search_args=("--trials", "8", "--epochs", "1", "--max-steps-per-epoch", "1",
                 "--fine-generations", "1", "--final-top", "1", "--final-epochs", "1"),
    timeout_s=60,
)  # fmt: skip


def in_memory(sizes: Sizes, seed: int) -> tuple[Dataset, str]:
    """The in-memory set and its name; mnist5k where Fashion-MNIST's files are absent."""
    try:
        return load_dataset(sizes.source, seed=seed), sizes.source
    except DatasetError:
        return load_dataset("mnist5k", seed=seed), "mnist5k"


def export_png(data: Dataset, root: Path) -> Path:
    """Both splits of an in-memory set written as ``root/class_k/i.png``, for streaming."""
    from PIL import Image

    xs = torch.cat([data.x_train, data.x_val]).numpy()
    ys = torch.cat([data.y_train, data.y_val]).tolist()
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        path = root / f"class_{y}" / f"{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[0] if x.shape[0] == 1 else x.transpose(1, 2, 0)).save(path)
    return root


def timed_train(
    sizes: Sizes,
    seed: int,
    build: Callable[[], torch.nn.Module],
    data: Dataset | StreamingDataset,
    **kw: Any,
) -> float:
    """Train images/s of one epoch of a freshly built model (evaluation excluded)."""
    result = train(
        build(), kw.pop("recipe", Recipe()), data, epochs=1, seed=seed, device=sizes.device,
        bn_recalibration=0, max_steps_per_epoch=sizes.steps, **kw,
    )  # fmt: skip
    return result.train_images_per_s


def medians(runs: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Table rows: each config's median images/s, with every run kept for the JSON."""
    return [{"config": k, "images_per_s": statistics.median(v), "runs": v} for k, v in runs.items()]


def section_trainer(sizes: Sizes, seed: int, work: Path) -> dict[str, Any]:
    """The in-memory uint8 set on the device (AMP, channels_last on/off) vs streaming it."""
    data, source = in_memory(sizes, seed)
    dev = torch.device(sizes.device)
    on = data._on(dev)
    space = get_space("fbnetv3-small")
    arch = space.decode({**space.smallest_params(), **MID_ARCH}).arch
    task = {"num_classes": data.num_classes, "in_channels": data.in_channels}

    def build() -> torch.nn.Module:
        return space.build_model(arch, **task, seed=seed)

    folder = export_png(data, work / "png")
    stream = load_dataset(folder, mode="stream", augment="crop-flip", seed=seed)
    common = {"resolution": arch.resolution, "batch_size": sizes.batch}

    def run(d: Dataset | StreamingDataset, **kw: Any) -> Callable[[], float]:
        return lambda: timed_train(sizes, seed, build, d, **common, **kw)

    kinds = {
        "memory, channels_last": run(data),
        "memory, contiguous": run(data, channels_last=False),
        "stream (PNG folder), channels_last": run(stream),
    }
    for first in kinds.values():  # untimed: kernels, workers, autocast caches
        first()
    rows = medians(alternate(kinds, sizes.repeats))
    pinned = stream._loader(dev).pin_memory
    checks = {
        "uint8 set on the device": all(t.device.type == dev.type for t in on)
        and on[0].dtype == torch.uint8,
        "streamed batches pinned iff CUDA": pinned == (dev.type == "cuda"),
    }
    return {
        "rows": rows,
        "checks": checks,
        "settings": {
            "dataset": source, "network": "fbnetv3-small MID_ARCH", **common,
            "amp": amp_name(dev), "on_device_bytes": sum(t.nbytes for t in on),
            "loader_workers": stream.workers, "pin_memory": pinned,
        },
    }  # fmt: skip


def amp_name(dev: torch.device) -> str:
    """The autocast dtype the trainer uses on ``dev`` (it is always on under CUDA)."""
    return ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if dev.type == "cuda" else "off"


def section_loader(sizes: Sizes, seed: int, work: Path) -> dict[str, Any]:
    """A JPEG folder streamed by workers vs held in memory and augmented on the device."""
    folder = make_image_folder.ensure_folder(
        work / "jpeg", n=sizes.jpeg_images, size=sizes.jpeg_size, seed=seed, progress=False
    )
    res = sizes.jpeg_resolution
    memory = load_dataset(folder, mode="memory", image_size=res, use_cache=False, seed=seed)
    stream = load_dataset(folder, mode="stream", seed=seed)  # rrc-flip, the folder default
    space = get_space("fbnetv3-imagenet")
    arch = space.decode(space.smallest_params()).arch
    task = {"num_classes": memory.num_classes, "in_channels": memory.in_channels}

    def build() -> torch.nn.Module:
        return space.build_model(arch, **task, seed=seed)

    def run(data: Dataset | StreamingDataset, recipe: Recipe) -> Callable[[], float]:
        kw = {"resolution": res, "batch_size": sizes.jpeg_batch, "recipe": recipe}
        return lambda: timed_train(sizes, seed, build, data, **kw)

    kinds = {
        f"memory ({res} px uint8), on-device rrc-flip": run(memory, Recipe()),
        "stream (workers decode + rrc-flip)": run(stream, Recipe()),
        "memory + RandAugment 0.3": run(memory, Recipe(augment=0.3)),
        "stream + RandAugment 0.3": run(stream, Recipe(augment=0.3)),
    }
    for r in kinds.values():
        r()
    return {
        "rows": medians(alternate(kinds, sizes.repeats)),
        "checks": {"memory set is uint8": memory.x_train.dtype == torch.uint8},
        "settings": {
            "images": sizes.jpeg_images, "jpeg_px": sizes.jpeg_size, "resolution": res,
            "network": "fbnetv3-imagenet smallest", "batch_size": sizes.jpeg_batch,
            "loader_workers": stream.workers,
        },
    }  # fmt: skip


def jointnas_run(args: list[str], log: Path, timeout: float) -> tuple[int, float, list[str]]:
    """``jointnas run ARGS`` as a subprocess: exit status (124: timed out), wall s, last lines."""
    cmd = [sys.executable, "-m", "jointnas.cli", "run", *args]
    env = {**os.environ, "JOINTNAS_CACHE_DIR": "off"}
    t0 = time.perf_counter()
    with log.open("w") as out:
        try:
            rc = subprocess.run(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            rc = 124
    return rc, time.perf_counter() - t0, log.read_text().splitlines()[-12:]


def trial_stats(storage_path: Path) -> dict[str, Any]:
    """Completed trials of every study in a journal, and the span from first start to last end."""
    from jointnas.storage.backends import open_storage

    storage = open_storage(str(storage_path))
    done = [
        t
        for s in storage.get_all_studies()
        for t in storage.get_all_trials(s._study_id)
        if t.state.name == "COMPLETE"
    ]
    if not done:
        return {"complete": 0, "span_s": None}
    span = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
    return {"complete": len(done), "span_s": round(span.total_seconds(), 2)}


def section_workers(sizes: Sizes, seed: int, work: Path, deadline: float) -> dict[str, Any]:
    """``jointnas run --workers N`` sharing one device on one study: trials per minute."""
    _, source = in_memory(sizes, seed)
    rows, ok = [], True
    for n in sizes.worker_counts:
        journal = work / f"workers{n}.log"
        args = [
            "--dataset", source, "--space", "fbnetv3-small", "--trials", str(sizes.worker_trials),
            "--epochs", "1", "--stop-after", "coarse", "--storage", str(journal),
            "--study", f"w{n}", "--out", str(work / f"w{n}"), "--no-progress",
            "--seed", str(seed), "--workers", str(n), "--device", sizes.device,
        ]  # fmt: skip
        if sizes.steps:
            args += ["--max-steps-per-epoch", str(sizes.steps)]
        timeout = min(sizes.timeout_s, max(1.0, deadline - time.perf_counter()))
        rc, wall, tail = jointnas_run(args, work / f"workers{n}.out", timeout)
        stats = trial_stats(journal) if journal.exists() else {"complete": 0, "span_s": None}
        span = stats["span_s"]
        rows.append({
            "workers": n, "exit": rc, "complete": stats["complete"],
            "trials_per_min_span": 60 * stats["complete"] / span if span else 0.0,
            "trials_per_min_wall": 60 * stats["complete"] / wall, "wall_s": round(wall, 1),
            **({"output_tail": tail} if rc else {}),
        })  # fmt: skip
        ok &= rc == 0
    return {
        "rows": rows,
        "checks": {"every run exited 0": ok},
        "settings": {"dataset": source, "trials": sizes.worker_trials, "device": sizes.device},
    }


def section_search(sizes: Sizes, seed: int, work: Path, deadline: float) -> dict[str, Any]:
    """A short real search, every stage, on the device."""
    _, source = in_memory(sizes, seed)
    out = work / "search"
    args = [
        "--dataset", source, "--space", "fbnetv3-small", "--storage", str(work / "search.log"),
        "--study", "search", "--out", str(out), "--no-progress", "--seed", str(seed),
        "--device", sizes.device, *sizes.search_args,
    ]  # fmt: skip
    timeout = min(2 * sizes.timeout_s, max(1.0, deadline - time.perf_counter()))
    rc, wall, tail = jointnas_run(args, work / "search.out", timeout)
    best = json.loads((out / "best.json").read_text()) if (out / "best.json").exists() else {}
    row = {
        "exit": rc,
        "wall_s": round(wall, 1),
        "best_val_acc": best.get("value"),
        "best_mflops": best.get("cost", {}).get("mflops"),
    }
    return {
        "rows": [row],
        "checks": {"exited 0 with a best.json": rc == 0 and bool(best)},
        "settings": {"dataset": source, "args": shlex.join(sizes.search_args)},
        **({"output_tail": tail} if rc else {}),
    }


BASIC = {
    "trainer": section_trainer,
    "loader": section_loader,
    "workers": section_workers,
    "search": section_search,
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="the same code on CPU at toy sizes")
    p.add_argument("--out", type=Path, default=None, help="results folder (see the docstring)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget-s", type=float, default=560.0, help="later sections are skipped")
    p.add_argument(
        "--sections",
        default=",".join(BASIC),
        help=f"comma-separated, from {[*BASIC, *_gpu_scale.SECTIONS]} (scale ones: issue 30)",
    )
    args = p.parse_args()
    chosen = args.sections.split(",")
    unknown = [s for s in chosen if s not in BASIC and s not in _gpu_scale.SECTIONS]
    if unknown:
        print(f"gpu_check: unknown section(s) {unknown}", file=sys.stderr)
        return 2
    if not args.tiny and not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA GPU visible (torch.cuda.is_available() is False); "
            "run with --tiny for the CPU smoke run",
            file=sys.stderr,
        )
        return 2
    sizes = TINY if args.tiny else FULL
    out = args.out or (
        Path(tempfile.mkdtemp(prefix="gpu_check_")) if args.tiny else _common.RESULTS
    )
    device = torch.cuda.get_device_name() if sizes.device == "cuda" else "cpu (tiny)"
    t0 = time.perf_counter()
    deadline = t0 + args.budget_s
    sections: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="gpu_check_work_") as tmp:
        work = Path(tmp)
        scale = _gpu_scale.TINY if args.tiny else _gpu_scale.FULL
        for name in chosen:
            if time.perf_counter() > deadline:
                sections[name] = {"status": "skipped (budget)", "error": "out of --budget-s"}
                continue
            print(f"[{name}]", file=sys.stderr)
            start = time.perf_counter()
            try:
                if name in BASIC:
                    extra = (deadline,) if name in ("workers", "search") else ()
                    sec = BASIC[name](sizes, args.seed, work, *extra)
                else:
                    sec = _gpu_scale.SECTIONS[name](scale, sizes.device, out, deadline)
                sec["status"] = "ok" if all(sec["checks"].values()) else "check failed"
            except Exception:  # record it, run the other sections
                sec = {"status": "error", "error": traceback.format_exc()}
                print(sec["error"], file=sys.stderr)
            sec["seconds"] = round(time.perf_counter() - start, 1)
            sections[name] = sec
    blob = {
        "command": shlex.join(["bash", "benchmarks/gpu_check.sh", *sys.argv[1:]]),
        "tiny": args.tiny,
        "seed": args.seed,
        "device": device,
        "sizes": asdict(sizes),
        "machine": {**_common.machine_facts(), "cpu_model": _proctree.cpu_model()},
        "seconds": time.perf_counter() - t0,
        "sections": sections,
    }
    write(out, blob)
    failed = [k for k, s in sections.items() if s["status"] != "ok"]
    print(f"wrote {out / 'gpu_check.json'}, {out / 'gpu_check.md'}; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
