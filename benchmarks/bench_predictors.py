"""How well the predictors rank real trainings, vs training-set size, with ablations.

Reads the recorded table (``benchmarks/record_table.py``). The held-out set is the candidates
trained with two seeds; their truth is the mean of both accuracies, and the two seeds' own
Kendall tau is reported beside the predictors as the noise ceiling (DESIGN.md: one seed's
ranking is itself noisy). Training sets of each size are drawn from the other candidates, once
per seed; each (variant, size, seed) is one fit.

    python benchmarks/bench_predictors.py [--sizes 25,50,100,200] [--seeds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import _common
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from jointnas.predictors import NeuralPredictor, XGBoostPredictor, ranking_metrics, read_table
from jointnas.spaces.fbnetv3 import FBNetV3Space
from jointnas.spaces.recipe_axes import before_augment_axis

VARIANTS = {
    "xgboost": lambda space, seed: XGBoostPredictor(space=space, seed=seed),
    "mlp": lambda space, seed: NeuralPredictor(space=space, seed=seed),
    "mlp: no proxy pretraining": lambda space, seed: NeuralPredictor(
        space=space, seed=seed, pretrain=False
    ),
    "mlp: all layers at once": lambda space, seed: NeuralPredictor(
        space=space, seed=seed, freeze=False
    ),
    "mlp: MSE loss": lambda space, seed: NeuralPredictor(space=space, seed=seed, loss="mse"),
}


def spread(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=str(_common.ROOT / "benchmarks/data/table.csv"))
    parser.add_argument("--sizes", default="25,50,100,200")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--stem", default="bench_predictors")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with before_augment_axis():  # the table was recorded before the augment axis
        space = FBNetV3Space()
    params, frame = read_table(args.table, space)
    twice = frame["acc_reseed"].notna().to_numpy()
    test = np.flatnonzero(twice)
    pool = np.flatnonzero(~twice)
    truth = frame.loc[twice, ["acc", "acc_reseed"]].mean(axis=1).to_numpy()
    sizes = [int(s) for s in args.sizes.split(",")]
    if max(sizes) > len(pool):
        raise SystemExit(f"size {max(sizes)} > {len(pool)} candidates outside the held-out set")
    test_params = [params[i] for i in test]
    y_all = frame["acc"].to_numpy()

    noise = ranking_metrics(truth, frame.loc[twice, "acc"].to_numpy())
    seed_vs_seed = ranking_metrics(
        frame.loc[twice, "acc"].to_numpy(), frame.loc[twice, "acc_reseed"].to_numpy()
    )
    by_mflops = ranking_metrics(truth, frame.loc[twice, "mflops"].to_numpy())
    print(
        f"{len(frame)} candidates, {len(test)} held out (2 seeds each), pool {len(pool)}\n"
        f"seed vs seed: tau {seed_vs_seed['kendall_tau']:.3f}; one seed vs the 2-seed mean: "
        f"tau {noise['kendall_tau']:.3f}; MFLOPs alone: tau {by_mflops['kendall_tau']:.3f}, "
        f"precision@10% {by_mflops['precision_at_10']:.2f}"
    )

    t0 = time.perf_counter()
    runs = []
    for name in args.variants.split(","):
        for n in sizes:
            for seed in range(args.seeds):
                pick = np.random.default_rng([seed, n]).choice(pool, size=n, replace=False)
                start = time.perf_counter()
                model = VARIANTS[name](space, seed)
                model.fit([params[i] for i in pick], y_all[pick])
                m = ranking_metrics(truth, model.predict(test_params))
                runs.append(
                    {
                        **m,  # its "n" is the test size: the training size below wins
                        "variant": name,
                        "n": n,
                        "seed": seed,
                        "fit_s": time.perf_counter() - start,
                    }
                )
            last = [r for r in runs if r["variant"] == name and r["n"] == n]
            print(
                f"  {name:28s} n={n:3d}: tau median "
                f"{statistics.median(r['kendall_tau'] for r in last):.3f}",
                flush=True,
            )

    rows = []
    for name in args.variants.split(","):
        for n in sizes:
            sel = [r for r in runs if r["variant"] == name and r["n"] == n]
            taus = [r["kendall_tau"] for r in sel]
            precs = [r["precision_at_10"] for r in sel]
            rows.append(
                {
                    "variant": name,
                    "n_train": n,
                    "seeds": len(sel),
                    "tau_median": round(statistics.median(taus), 3),
                    "tau_range": spread(taus),
                    "p@10_median": round(statistics.median(precs), 2),
                    "p@10_range": spread(precs),
                    "spearman_median": round(statistics.median(r["spearman"] for r in sel), 3),
                    "mae_median": round(statistics.median(r["mae"] for r in sel), 4),
                    "fit_s_median": round(statistics.median(r["fit_s"] for r in sel), 2),
                }
            )
    facts = _common.machine_facts()
    facts["wall_s"] = round(time.perf_counter() - t0, 1)
    reference = {
        "seed_vs_seed": seed_vs_seed,
        "one_seed_vs_mean": noise,
        "mflops_alone": by_mflops,
        "n_candidates": len(frame),
        "n_test": len(test),
        "n_pool": len(pool),
    }
    table = _common.print_table(rows, list(rows[0]))
    _common.write_results(
        args.stem,
        rows,
        facts,
        extra={
            "settings": vars(args),
            "reference": reference,
            "runs": runs,
            "table_markdown": table,
        },
    )
    plot(rows, runs, sizes, reference, _common.RESULTS / f"{args.stem}.png")
    print(f"\nwrote benchmarks/results/{args.stem}.{{csv,json,png}} in {facts['wall_s']} s")


def plot(rows, runs, sizes, reference, path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, key, label in (
        (axes[0], "kendall_tau", "Kendall tau"),
        (axes[1], "precision_at_10", "precision@10%"),
    ):
        for name in dict.fromkeys(r["variant"] for r in rows):
            vals = [[r[key] for r in runs if r["variant"] == name and r["n"] == n] for n in sizes]
            med = [statistics.median(v) for v in vals]
            ax.plot(sizes, med, "o-", label=name)
            ax.fill_between(sizes, [min(v) for v in vals], [max(v) for v in vals], alpha=0.12)
        ax.axhline(reference["mflops_alone"][key], color="grey", ls=":", label="MFLOPs alone")
        ax.axhline(
            reference["one_seed_vs_mean"][key],
            color="black",
            ls="--",
            label="one training seed (noise ceiling)",
        )
        ax.set(xscale="log", xticks=sizes, xlabel="training trials", ylabel=label)
        ax.set_xticklabels([str(s) for s in sizes])
        ax.set_title(f"{label} on {reference['n_test']} held-out candidates (2-seed mean)")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
