"""Analytic cost vs fvcore: speed per candidate and exactness.

For N seeded random candidates of each FBNetV3 preset, times

* ``cost(arch)``: the scalar analytic count (median over ``--repeats`` calls per candidate),
* ``cost_batch(space, X)``: the vectorised count of a whole population (``--population`` rows at
  once, median over ``--batch-repeats`` calls, divided by the population size),
* ``FlopCountAnalysis(model.eval(), x).total()`` from fvcore (one trace per candidate; the model is
  built first and its build time is not counted),

and checks that the analytic FLOPs equal fvcore's, the analytic parameter count equals
``sum(p.numel())``, and ``cost_batch`` equals ``cost`` row by row.

    python benchmarks/bench_cost.py [--seed 0] [--n-small 50] [--n-imagenet 20]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
import warnings

import _common
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from fvcore.nn import FlopCountAnalysis

from jointnas.spaces.fbnetv3 import FBNetV3Space
from jointnas.spaces.nets.cost import cost, cost_batch
from jointnas.spaces.nets.model import build_model

# (num_classes, in_channels) the preset is meant for: MNIST-like digits, ImageNet
TASKS = {"small": (10, 1), "imagenet": (1000, 3)}


def time_analytic(arch, num_classes: int, in_channels: int, repeats: int) -> float:
    """Median seconds of one ``cost()`` call."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        cost(arch, num_classes=num_classes, in_channels=in_channels)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fvcore_count(model: torch.nn.Module, x: torch.Tensor) -> tuple[int, float]:
    """fvcore's FLOP total and the seconds it took (construction + trace + total)."""
    t0 = time.perf_counter()
    analysis = FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    total = int(analysis.total())
    return total, time.perf_counter() - t0


def bench_preset(
    preset: str, n: int, args: argparse.Namespace, rng: np.random.Generator
) -> tuple[dict, list[dict]]:
    space = FBNetV3Space(preset=preset)
    num_classes, in_channels = TASKS[preset]
    params = [space.sample(rng) for _ in range(n)]
    cands = [space.decode(p) for p in params]

    # Vectorised path: a population of --population rows, timed as a whole.
    unit = rng.random((args.population, len(space.encoder.names)))
    X_pop = space.encode(space.encoder.from_unit(unit))
    batch_times = []
    for _ in range(args.batch_repeats):
        t0 = time.perf_counter()
        cost_batch(space, X_pop, num_classes=num_classes, in_channels=in_channels)
        batch_times.append(time.perf_counter() - t0)
    batch_s = statistics.median(batch_times) / args.population
    batch_n = cost_batch(
        space, space.encode(params), num_classes=num_classes, in_channels=in_channels
    )

    per_cand = []
    for i, cand in enumerate(cands):
        arch = cand.arch
        analytic = cost(arch, num_classes=num_classes, in_channels=in_channels)
        analytic_s = time_analytic(arch, num_classes, in_channels, args.repeats)
        model = build_model(arch, num_classes, in_channels, seed=args.seed).eval()
        x = torch.zeros(1, in_channels, arch.resolution, arch.resolution)
        fv_flops, fv_s = fvcore_count(model, x)
        n_params = sum(p.numel() for p in model.parameters())
        per_cand.append(
            {
                "preset": preset,
                "index": i,
                "resolution": arch.resolution,
                "mflops": analytic.flops / 1e6,
                "params": analytic.params,
                "analytic_us": analytic_s * 1e6,
                "batch_us": batch_s * 1e6,
                "fvcore_ms": fv_s * 1e3,
                "fvcore_flops": fv_flops,
                "torch_params": n_params,
                "flops_exact": analytic.flops == fv_flops,
                "params_exact": analytic.params == n_params,
                "batch_equals_scalar": (
                    int(batch_n.flops[i]),
                    int(batch_n.params[i]),
                    int(batch_n.acts[i]),
                )
                == (analytic.flops, analytic.params, analytic.acts),
            }
        )
        print(
            f"  {preset} {i + 1}/{n}: {analytic.flops / 1e6:8.2f} MFLOPs  "
            f"analytic {analytic_s * 1e6:6.1f} us  fvcore {fv_s * 1e3:7.1f} ms  "
            f"exact={analytic.flops == fv_flops and analytic.params == n_params}",
            flush=True,
        )

    analytic_us = statistics.median(r["analytic_us"] for r in per_cand)
    fvcore_ms = statistics.median(r["fvcore_ms"] for r in per_cand)
    mflops = [r["mflops"] for r in per_cand]
    summary = {
        "preset": preset,
        "n": n,
        "mflops_range": f"{min(mflops):.2f}-{max(mflops):.2f}",
        "analytic_us": round(analytic_us, 2),
        "batch_us": round(batch_s * 1e6, 3),
        "fvcore_ms": round(fvcore_ms, 1),
        "fvcore/analytic": round(fvcore_ms * 1e3 / analytic_us),
        "fvcore/batch": round(fvcore_ms * 1e3 / (batch_s * 1e6)),
        "flops_exact": f"{sum(r['flops_exact'] for r in per_cand)}/{n}",
        "params_exact": f"{sum(r['params_exact'] for r in per_cand)}/{n}",
        "batch==scalar": f"{sum(r['batch_equals_scalar'] for r in per_cand)}/{n}",
    }
    return summary, per_cand


def plot(per_cand: list[dict], presets: list[str], path) -> None:
    fig, axes = plt.subplots(1, len(presets), figsize=(5.5 * len(presets), 4.2), squeeze=False)
    for ax, preset in zip(axes[0], presets, strict=True):
        rows = [r for r in per_cand if r["preset"] == preset]
        mf = [r["mflops"] for r in rows]
        ax.scatter(
            mf,
            [r["fvcore_ms"] * 1e3 for r in rows],
            label="fvcore FlopCountAnalysis",
            marker="o",
            color="tab:red",
        )
        ax.scatter(
            mf,
            [r["analytic_us"] for r in rows],
            label="analytic cost()",
            marker="s",
            color="tab:blue",
        )
        ax.scatter(
            mf,
            [r["batch_us"] for r in rows],
            label="cost_batch (per row)",
            marker="^",
            color="tab:green",
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("candidate MFLOPs (log)")
        ax.set_ylabel("time per candidate (microseconds, log)")
        ax.set_title(f"preset '{preset}' (n={len(rows)})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Cost of counting FLOPs: analytic vs fvcore")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-small", type=int, default=50, help="candidates of preset 'small'")
    parser.add_argument(
        "--n-imagenet", type=int, default=20, help="candidates of preset 'imagenet'"
    )
    parser.add_argument(
        "--population", type=int, default=10_000, help="rows passed to one cost_batch call"
    )
    parser.add_argument(
        "--repeats", type=int, default=101, help="timed cost() calls per candidate (median)"
    )
    parser.add_argument(
        "--batch-repeats", type=int, default=7, help="timed cost_batch calls (median)"
    )
    parser.add_argument("--stem", default="bench_cost", help="output file stem under results/")
    args = parser.parse_args()

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")  # jit tracer warnings from fvcore
    facts = _common.machine_facts()
    rng = np.random.default_rng(args.seed)
    presets = [p for p, n in (("small", args.n_small), ("imagenet", args.n_imagenet)) if n > 0]
    summaries, per_cand = [], []
    t_start = time.perf_counter()
    for preset in presets:
        n = args.n_small if preset == "small" else args.n_imagenet
        summary, rows = bench_preset(preset, n, args, rng)
        summaries.append(summary)
        per_cand += rows
    facts["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
    facts["wall_s"] = round(time.perf_counter() - t_start, 1)

    print(
        f"\nseed {args.seed}; torch threads {facts['torch_num_threads']}; "
        f"load avg {facts['loadavg_1m_start']} -> {facts['loadavg_1m_end']}; "
        f"{facts['wall_s']} s\n"
    )
    table = _common.print_table(summaries, list(summaries[0]))
    csv_path, json_path = _common.write_results(
        args.stem,
        summaries,
        facts,
        extra={"settings": vars(args), "table_markdown": table, "per_candidate": per_cand},
    )
    png = _common.RESULTS / f"{args.stem}.png"
    plot(per_cand, presets, png)
    print(
        f"\nwrote {csv_path.relative_to(_common.ROOT)}, {json_path.relative_to(_common.ROOT)}, "
        f"{png.relative_to(_common.ROOT)}"
    )


if __name__ == "__main__":
    main()
