"""Trainer throughput vs a minimal hand-written torch loop, and three CPU knobs.

Three candidates of the 'small' space at one fixed resolution (the space's smallest, a median
one and the largest of a seeded pool under ``--max-mflops``) are trained on MNIST-5k with the
plain-SGD recipe ``Recipe(optimizer='sgd', lr=0.1, weight_decay=1e-4)`` (every regulariser off),
batch 128, for ``--epochs`` epochs:

* ``ours``: ``jointnas.train`` (train images/s as it reports them, evaluation excluded);
* ``reference``: the same model (built with the same seed) and data in a bare loop: randperm
  shuffle, forward, cross_entropy, zero_grad, backward, step; no schedule, no evaluation. Its
  optimizer is the trainer's (SGD, momentum 0.9, Nesterov, no decay on 1-d tensors), so the two
  differ only in what the trainer adds around the step;
* ``ours + channels_last``: ``train(..., channels_last=True)``.

Each of the three runs at every thread count of ``--threads`` (default: torch's default, then 1):
on a shared 2-core machine the default two intra-op threads can collapse under load from other
processes, and one thread may be the better default (``--background-load N`` adds N busy
processes to show it). Each run records the trainer's own train images/s (the headline: its
training loop only), the images/s of the whole call (for ``ours`` this adds the per-epoch BatchNorm
recalibration and evaluation that ``train`` does and the reference does not), images per
CPU-second of the process (robust to load at one thread) and minor page faults (what
``tune_malloc`` should reduce).

Per candidate the configurations run interleaved (ours, reference, channels_last, per thread
count; the order rotates with the repeat so each kind runs first equally often) in a child
process. ``jointnas.training.perf.tune_malloc()`` changes the whole process, so the
parent starts one child per (repeat, malloc setting), alternating default/tuned in ABBA order,
and reports medians over repeats, plus the median of (ours / reference) over runs adjacent in
time. Every timed run is preceded by one untimed forward/backward step of the same configuration:
without it, whichever configuration ran first after a change of model, thread count or memory
format paid for rebuilding oneDNN kernels (5-8% on the smallest candidate in a first version);
and each child first makes one tiny untimed call of every kind, because the first optimizer or
trainer call in a process pays about a second of one-time initialisation.

    python benchmarks/bench_trainer.py [--seed 0] [--epochs 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

import _common
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from jointnas.spaces.fbnetv3 import FBNetV3Space, Recipe
from jointnas.spaces.nets.cost import cost

RECIPE = Recipe(optimizer="sgd", lr=0.1, weight_decay=1e-4)
KINDS = ("ours", "reference", "ours_cl")
LABELS = {
    "ours": "ours (train())",
    "reference": "reference hand loop",
    "ours_cl": "ours + channels_last",
}
MALLOC = ("default", "tuned")
MARK = "@@RESULT@@ "


def pick_candidates(seed: int, resolution: int, pool: int, max_mflops: float) -> list[dict]:
    """Smallest of the space, the pool's median and the pool's largest under ``max_mflops``,
    all at ``resolution`` (deterministic in ``seed``)."""
    space = FBNetV3Space(preset="small")
    rng = np.random.default_rng(seed)

    def at_res(params: dict) -> dict:
        return {**params, "resolution": resolution}

    def mflops(params: dict) -> float:
        return cost(space.decode(params).arch, num_classes=10, in_channels=1).flops / 1e6

    sampled = [at_res(space.sample(rng)) for _ in range(pool)]
    costs = np.array([mflops(p) for p in sampled])
    median = sampled[int(np.argmin(np.abs(costs - np.median(costs))))]
    under = np.flatnonzero(costs < max_mflops)
    if len(under) == 0:
        raise SystemExit(f"no pool candidate under {max_mflops} MFLOPs at {resolution}px")
    larger = sampled[int(under[np.argmax(costs[under])])]
    picks = [("smallest", at_res(space.smallest_params())), ("median", median), ("larger", larger)]
    return [{"name": name, "params": p, "mflops": round(mflops(p), 3)} for name, p in picks]


# ------------------------------------------------------------------------------------------------
# child: one process, one malloc setting
# ------------------------------------------------------------------------------------------------


def reference_loop(model, x, y, *, epochs: int, seed: int, batch_size: int = 128) -> float:
    """The minimal loop; returns train images/s."""
    import torch
    from torch.nn import functional as F

    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.SGD(
        [
            {"params": decay, "weight_decay": RECIPE.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=RECIPE.lr,
        momentum=0.9,
        nesterov=True,
    )
    gen = torch.Generator().manual_seed(seed)
    seconds = 0.0
    for _ in range(epochs):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        seconds += time.perf_counter() - t0
    return epochs * len(x) / seconds


def run_child(args: argparse.Namespace) -> None:
    tuned = False
    if args.malloc == "tuned":  # before torch allocates anything
        from jointnas.training.perf import tune_malloc

        tuned = tune_malloc()
    import torch

    from jointnas.spaces.nets.model import build_model
    from jointnas.training.augment import unit
    from jointnas.training.data import load_dataset
    from jointnas.training.trainer import train

    space = FBNetV3Space(preset="small")
    default_threads = torch.get_num_threads()
    thread_list = thread_counts(args.threads, default_threads)
    kinds = args.kinds.split(",")
    # no augmentation: the reference loop has none, so both train on the same images
    data = load_dataset("mnist5k", seed=args.seed, augment="none").subset(
        train=args.train_images, val=args.val_images
    )
    data = data.at_resolution(args.resolution)
    cands = pick_candidates(args.seed, args.resolution, args.pool, args.max_mflops)

    def one(kind: str, threads: int, arch, *, epochs: int, x=data.x_train, y=data.y_train) -> dict:
        model = build_model(arch, data.num_classes, data.in_channels, seed=args.seed)
        torch.set_num_threads(threads)
        ru0, cpu0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
        wall0 = time.perf_counter()
        if kind == "reference":
            xf = data.normalize(unit(x))  # the loop a user writes holds normalised floats
            ips = reference_loop(model, xf, y, epochs=epochs, seed=args.seed)
        else:
            sub = dataclasses.replace(data, x_train=x, y_train=y)
            ips = train(
                model,
                RECIPE,
                sub,
                epochs=epochs,
                seed=args.seed,
                device="cpu",
                channels_last=kind == "ours_cl",
            ).train_images_per_s
        call_s, cpu_s = time.perf_counter() - wall0, time.process_time() - cpu0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        torch.set_num_threads(default_threads)
        return {
            "images_per_s": ips,
            "call_images_per_s": epochs * len(x) / call_s,
            "cpu_images_per_s": epochs * len(x) / cpu_s,
            "call_s": call_s,
            "cpu_s": cpu_s,
            "minflt": ru1.ru_minflt - ru0.ru_minflt,
            "loadavg": os.getloadavg()[0],
        }

    def prime(kind: str, threads: int, arch) -> None:
        """One untimed forward/backward in this configuration, so that the timed run does not
        pay for oneDNN kernels that the previous configuration evicted or never built."""
        model = build_model(arch, data.num_classes, data.in_channels, seed=args.seed).train()
        torch.set_num_threads(threads)
        xb = data.normalize(unit(data.x_train[:128]))
        if kind == "ours_cl":
            model.to(memory_format=torch.channels_last)
            xb = xb.contiguous(memory_format=torch.channels_last)
        torch.nn.functional.cross_entropy(model(xb), data.y_train[:128]).backward()
        torch.set_num_threads(default_threads)

    # Process warm-up: the first optimizer/trainer call in a process pays ~1 s of one-time
    # initialisation outside the training loop, which would land on whichever run is first.
    warm = space.decode(cands[0]["params"]).arch
    for kind in kinds:
        one(kind, default_threads, warm, epochs=1, x=data.x_train[:128], y=data.y_train[:128])

    shift = args.rotation % len(kinds)  # the parent rotates which kind runs first
    order = kinds[shift:] + kinds[:shift]
    runs = []
    for cand in cands:
        arch = space.decode(cand["params"]).arch
        for inner in range(args.inner):
            for threads in thread_list:
                for kind in order:
                    prime(kind, threads, arch)
                    rec = one(kind, threads, arch, epochs=args.epochs)
                    runs.append(
                        {
                            "candidate": cand["name"],
                            "kind": kind,
                            "threads": threads,
                            "inner": inner,
                            "malloc": args.malloc,
                            **rec,
                        }
                    )
                    print(
                        f"    [{args.malloc}] {cand['name']:8s} {kind:9s} {threads} thr "
                        f"{rec['images_per_s']:7.0f} img/s (cpu {rec['cpu_images_per_s']:5.0f})"
                        f"  load {rec['loadavg']:.1f}",
                        file=sys.stderr,
                        flush=True,
                    )
    print(
        MARK
        + json.dumps(
            {
                "malloc": args.malloc,
                "tuned": tuned,
                "default_threads": default_threads,
                "runs": runs,
            }
        )
    )


def thread_counts(spec: str, default: int) -> list[int]:
    """'default,1' -> [torch's default, 1], duplicates dropped, order kept."""
    out: list[int] = []
    for item in spec.split(","):
        n = default if item.strip() == "default" else int(item)
        if n not in out:
            out.append(n)
    return out


# ------------------------------------------------------------------------------------------------
# parent: interleave children, aggregate, report
# ------------------------------------------------------------------------------------------------


def spawn(args: argparse.Namespace, malloc: str, rotation: int) -> dict:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        "--malloc",
        malloc,
        "--rotation",
        str(rotation),
    ]
    for key in (
        "seed",
        "epochs",
        "resolution",
        "train_images",
        "val_images",
        "pool",
        "max_mflops",
        "inner",
        "threads",
        "kinds",
    ):
        cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(MARK))
    return json.loads(line[len(MARK) :])


def med(values) -> float:
    values = list(values)
    return statistics.median(values) if values else math.nan


def geomean(values) -> float:
    values = [v for v in values if v == v]
    return float(np.exp(np.mean(np.log(values)))) if values else math.nan


class Runs:
    """Selection helpers over the flat list of run records."""

    def __init__(self, runs: list[dict]) -> None:
        self.runs = runs

    def get(self, metric: str = "images_per_s", **match) -> list[float]:
        return [r[metric] for r in self.runs if all(r[k] == v for k, v in match.items())]

    def median(self, metric: str = "images_per_s", **match) -> float:
        return med(self.get(metric, **match))

    def paired(self, num: str, den: str, **match) -> float:
        """Median ratio of runs adjacent in time (same child, same inner round)."""
        key = {
            (r["child"], r["inner"], r["kind"]): r["images_per_s"]
            for r in self.runs
            if all(r[k] == v for k, v in match.items())
        }
        return med(v / key[(c, i, den)] for (c, i, kind), v in key.items() if kind == num)


def aggregate(
    runs: Runs, cands: list[dict], thread_list: list[int], kinds: list[str], mallocs: list[str]
) -> tuple[list[dict], list[dict]]:
    """Per (malloc, threads, candidate) medians and ratios; per candidate knob effects."""
    rows, effects = [], []
    for malloc in mallocs:
        for threads in thread_list:
            for cand in cands:
                sel = {"candidate": cand["name"], "malloc": malloc, "threads": threads}
                m = {k: runs.median(kind=k, **sel) for k in kinds}
                call = {k: runs.median("call_images_per_s", kind=k, **sel) for k in kinds}
                cpu = {k: runs.median("cpu_images_per_s", kind=k, **sel) for k in kinds}
                row = {
                    "malloc": malloc,
                    "threads": threads,
                    "candidate": cand["name"],
                    "mflops": cand["mflops"],
                    "runs": len(runs.get(kind=kinds[0], **sel)),
                }
                row.update({f"{k}_ips": round(m[k]) for k in kinds})
                if "reference" in kinds:
                    row["ours/ref"] = round(m["ours"] / m["reference"], 3)
                    row["ours/ref_paired"] = round(runs.paired("ours", "reference", **sel), 3)
                    row["ours/ref_call"] = round(call["ours"] / call["reference"], 3)
                    row["ours/ref_cpu"] = round(cpu["ours"] / cpu["reference"], 3)
                if "ours_cl" in kinds:
                    row["cl/ours"] = round(m["ours_cl"] / m["ours"], 3)
                    row["cl/ours_paired"] = round(runs.paired("ours_cl", "ours", **sel), 3)
                    row["cl/ours_cpu"] = round(cpu["ours_cl"] / cpu["ours"], 3)
                rows.append(row)
    low = min(thread_list)
    for cand in cands:
        name = cand["name"]
        row: dict = {"candidate": name, "mflops": cand["mflops"]}
        for threads in thread_list:
            if threads != low:
                sel = {"candidate": name, "kind": "ours", "malloc": mallocs[0]}
                row[f"ours_{low}t/{threads}t"] = round(
                    runs.median(threads=low, **sel) / runs.median(threads=threads, **sel), 3
                )
        for threads in thread_list:
            sel = {"candidate": name, "kind": "ours", "threads": threads}
            if "tuned" in mallocs and "default" in mallocs:
                for metric, tag in (("images_per_s", ""), ("cpu_images_per_s", "_cpu")):
                    row[f"tuned/default_{threads}t{tag}"] = round(
                        runs.median(metric, malloc="tuned", **sel)
                        / runs.median(metric, malloc="default", **sel),
                        3,
                    )
            for malloc in mallocs:
                row[f"minflt_{malloc}_{threads}t"] = round(
                    runs.median("minflt", malloc=malloc, **sel)
                )
        effects.append(row)
    return rows, effects


def plot(
    runs: Runs,
    cands: list[dict],
    thread_list: list[int],
    kinds: list[str],
    mallocs: list[str],
    title: str,
    path,
) -> None:
    fig, axes = plt.subplots(
        len(thread_list),
        len(mallocs),
        figsize=(6 * len(mallocs), 4.2 * len(thread_list)),
        sharey=True,
        squeeze=False,
    )
    width = 0.8 / len(kinds)
    colors = {"ours": "tab:blue", "reference": "tab:gray", "ours_cl": "tab:orange"}
    for row_axes, threads in zip(axes, thread_list, strict=True):
        for ax, malloc in zip(row_axes, mallocs, strict=True):
            for j, kind in enumerate(kinds):
                vals = [
                    runs.get(candidate=c["name"], kind=kind, malloc=malloc, threads=threads)
                    for c in cands
                ]
                mid = [med(v) for v in vals]
                err = [
                    [m - min(v) for m, v in zip(mid, vals, strict=True)],
                    [max(v) - m for m, v in zip(mid, vals, strict=True)],
                ]
                xs = np.arange(len(cands)) + (j - (len(kinds) - 1) / 2) * width
                ax.bar(xs, mid, width, yerr=err, capsize=3, label=LABELS[kind], color=colors[kind])
            ax.set_xticks(
                np.arange(len(cands)), [f"{c['name']}\n{c['mflops']:.2f} MFLOPs" for c in cands]
            )
            ax.set_xlabel("candidate")
            ax.set_ylabel("train images / s (median; bar = min-max)")
            ax.set_yscale("log")
            what = "glibc malloc defaults" if malloc == "default" else "tune_malloc()"
            ax.set_title(f"{threads} torch thread(s), {what}")
            ax.grid(True, axis="y", which="both", alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _busy() -> None:
    while True:
        pass


def start_background_load(n: int) -> list:
    """``n`` busy-looping processes standing in for other work on a shared machine."""
    import multiprocessing as mp

    procs = [mp.get_context("spawn").Process(target=_busy, daemon=True) for _ in range(n)]
    for proc in procs:
        proc.start()
    return procs


# columns printed (the CSV and JSON carry every column)
SHOWN = (
    "malloc",
    "threads",
    "candidate",
    "mflops",
    "runs",
    "ours_ips",
    "reference_ips",
    "ours/ref",
    "ours/ref_paired",
    "ours/ref_call",
    "ours_cl_ips",
    "cl/ours",
)


def run_parent(args: argparse.Namespace) -> None:
    kinds, mallocs = args.kinds.split(","), args.mallocs.split(",")
    facts = _common.machine_facts()
    cands = pick_candidates(args.seed, args.resolution, args.pool, args.max_mflops)
    space = FBNetV3Space(preset="small")
    for c in cands:
        arch = space.decode(c["params"]).arch
        stages = ", ".join(f"k{s.kernel}e{s.expansion}w{s.width}d{s.depth}" for s in arch.stages)
        c["description"] = f"{args.resolution}px, stem {arch.stem_width}, stages {stages}"
        print(f"{c['name']:8s} {c['mflops']:.3f} MFLOPs  {c['description']}")
    background = start_background_load(args.background_load)
    facts["background_load_processes"] = args.background_load
    t_start = time.perf_counter()
    records, tuned_ok, child, default_threads = [], None, 0, None
    try:
        for rep in range(args.repeats):
            order = mallocs if rep % 2 == 0 else mallocs[::-1]  # ABBA against drift
            for malloc in order:
                print(f"repeat {rep + 1}/{args.repeats}, malloc {malloc}", flush=True)
                out = spawn(args, malloc, rep)
                if malloc == "tuned":
                    tuned_ok = out["tuned"]
                default_threads = out["default_threads"]
                records += [{**r, "child": child, "repeat": rep} for r in out["runs"]]
                child += 1
    finally:
        for proc in background:
            proc.terminate()
            proc.join()
    thread_list = thread_counts(args.threads, default_threads)
    runs = Runs(records)
    facts["torch_num_threads"] = default_threads
    facts["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
    facts["loadavg_1m_during_runs_median"] = round(med(r["loadavg"] for r in records), 2)
    facts["wall_s"] = round(time.perf_counter() - t_start, 1)
    facts["tune_malloc_returned"] = tuned_ok

    rows, effects = aggregate(runs, cands, thread_list, kinds, mallocs)
    print(
        f"\nseed {args.seed}; {args.train_images} train images at {args.resolution}px, "
        f"{args.epochs} epochs, batch 128; {args.repeats} child processes per malloc setting "
        f"x {args.inner} round(s); threads {thread_list} (torch default {default_threads}); "
        f"{args.background_load} background busy process(es); load avg "
        f"{facts['loadavg_1m_start']} -> {facts['loadavg_1m_end']} (median during runs "
        f"{facts['loadavg_1m_during_runs_median']}); {facts['wall_s']} s\n"
    )
    table = _common.print_table(rows, [c for c in SHOWN if c in rows[0]])
    print()
    effect_table = _common.print_table(effects, list(effects[0]))
    summary: dict[str, float] = {}
    for threads in thread_list:
        for malloc in mallocs:
            sel = [r for r in rows if (r["malloc"], r["threads"]) == (malloc, threads)]
            for col in (
                "ours/ref",
                "ours/ref_paired",
                "ours/ref_call",
                "ours/ref_cpu",
                "cl/ours",
                "cl/ours_paired",
                "cl/ours_cpu",
            ):
                if col in sel[0]:
                    summary[f"{col}, {threads}t, malloc {malloc}"] = geomean(r[col] for r in sel)
        for tag in ("", "_cpu"):
            col = f"tuned/default_{threads}t{tag}"
            if col in effects[0]:
                summary[f"tune_malloc {col} (ours)"] = geomean(e[col] for e in effects)
    low = min(thread_list)
    for threads in thread_list:
        if threads != low:
            summary[f"ours {low}t/{threads}t, malloc {mallocs[0]}"] = geomean(
                e[f"ours_{low}t/{threads}t"] for e in effects
            )
    summary = {k: round(v, 3) for k, v in summary.items()}
    print("\ngeometric means over the candidates:")
    for key, value in summary.items():
        print(f"  {key}: {value}")
    csv_path, json_path = _common.write_results(
        args.stem,
        rows,
        facts,
        extra={
            "settings": vars(args),
            "candidates": cands,
            "summary": summary,
            "effects": effects,
            "table_markdown": table,
            "effects_markdown": effect_table,
            "runs": records,
        },
    )
    effects_csv, _ = _common.write_results(f"{args.stem}_effects", effects, facts)
    png = _common.RESULTS / f"{args.stem}.png"
    load = f", {args.background_load} busy background process(es)" if args.background_load else ""
    plot(
        runs,
        cands,
        thread_list,
        kinds,
        mallocs,
        f"Trainer throughput vs a hand-written loop (CPU, batch 128{load})",
        png,
    )
    print(
        f"\nwrote {csv_path.relative_to(_common.ROOT)}, "
        f"{effects_csv.relative_to(_common.ROOT)}, {json_path.relative_to(_common.ROOT)}, "
        f"{png.relative_to(_common.ROOT)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--repeats", type=int, default=3, help="child processes per malloc setting (ABBA order)"
    )
    parser.add_argument(
        "--inner",
        type=int,
        default=1,
        help="interleaved rounds of every configuration inside one child",
    )
    parser.add_argument(
        "--threads",
        default="default,1",
        help="comma list of torch thread counts to run ('default' = torch's)",
    )
    parser.add_argument(
        "--kinds",
        default=",".join(KINDS),
        help=f"comma list from {','.join(KINDS)} (must include ours)",
    )
    parser.add_argument(
        "--mallocs",
        default=",".join(MALLOC),
        help="comma list from default,tuned (tune_malloc() in the child)",
    )
    parser.add_argument(
        "--background-load",
        type=int,
        default=0,
        help="busy-looping processes to run meanwhile (simulate a shared machine)",
    )
    parser.add_argument("--resolution", type=int, default=28)
    parser.add_argument(
        "--train-images",
        type=int,
        default=512,
        help="first N MNIST-5k training images (4000 = all)",
    )
    parser.add_argument(
        "--val-images",
        type=int,
        default=16,
        help="validation images the trainer evaluates per epoch (kept tiny: "
        "not in its images/s, but in its whole-call and CPU time)",
    )
    parser.add_argument("--pool", type=int, default=200, help="random candidates to pick from")
    parser.add_argument("--max-mflops", type=float, default=3.0)
    parser.add_argument("--stem", default="bench_trainer", help="output file stem under results/")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--malloc", choices=MALLOC, default="default", help=argparse.SUPPRESS)
    parser.add_argument("--rotation", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    bad = set(args.kinds.split(",")) - set(KINDS) or set(args.mallocs.split(",")) - set(MALLOC)
    if bad or "ours" not in args.kinds.split(","):
        parser.error(f"bad --kinds/--mallocs entry {sorted(bad) or '(ours missing)'}")
    if args.child:
        run_child(args)
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
