"""One-shot supernet vs stand-alone training (issue 15): ranking, cost, transfer, predictor bridge.

On Fashion-MNIST (8,000 images, 6,000 train / 2,000 val, seeded split) and the small
``shufflenet-choice`` space (12 choice layers, 4 choices each):

A. ``--paths`` distinct random subnets trained stand-alone for ``--sa-epochs`` epochs with the
   SPOS recipe: the first ``--repeated`` with ``--seeds`` seeds (the ground truth is their
   mean; the tau between seeds, and between the means of two halves of the seeds, is the
   ceiling any proxy can reach), the rest with seed 0.
B. Two supernets at equal training steps: SPOS uniform and GreedyNAS (m=10, k=5, pool 50, the
   pool early stop off so steps stay equal; ``--score-images`` held-out images score the paths,
   and that scoring time is counted).
C. Every subnet scored on each supernet with BN recalibration (1,024 images) and with the
   inherited statistics; Kendall tau (scipy) against the stand-alone accuracy, over all subnets
   and over the better half.
D. Cost: supernet training + a ``--trials`` search (``search_supernet``, genetic sampler, limit
   = the median MFLOPs of the subnets) vs the stand-alone trainings; the winner of each route
   (best stand-alone subnet under the limit; each supernet's search winner) retrained with seeds
   0 and 1 for ``--final-epochs`` epochs.
E. DetNAS transfer: a GreedyNAS supernet pretrained on MNIST-5k, fine-tuned on Fashion-MNIST
   (``init=``), searched on Fashion-MNIST; vs searching the MNIST supernet on MNIST and taking
   that winner to Fashion-MNIST; vs the Fashion-only supernet of B. Winners retrained as in D.
F. Bridge: XGBoost (the predictor's settings) on one-hot choices, with and without the greedy
   supernet score as an extra input, and the score alone as a proxy; tau on held-out subnets
   over random 25/25 splits and 5-fold splits (40 trainings).

Run: ``python benchmarks/bench_supernet.py`` (about 90 min on 2 cores). Supernets, a JSON cache
of every training and score, and the Optuna journal go to ``benchmarks/state/supernet/``, so a
rerun resumes; results go to ``benchmarks/results/bench_supernet_*.{csv,json}`` and
``bench_supernet.png``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from statistics import mean

import _common  # noqa: F401  (puts the repository root on sys.path)
import numpy as np
import optuna
import torch
from _common import RESULTS, ROOT, machine_facts, print_table, write_results
from scipy.stats import kendalltau

from jointnas import files
from jointnas.constraints import Limits
from jointnas.evaluators import InheritWeights, TrainFromScratch
from jointnas.runs.supernet_search import SearchConfig, search_supernet
from jointnas.spaces.recipe import Recipe
from jointnas.spaces.shufflenet_choice import ShuffleChoiceSpace
from jointnas.supernet.paths import PathSampler
from jointnas.supernet.training import (
    SupernetConfig,
    load_supernet,
    save_supernet,
    train_supernet,
)
from jointnas.training.data import load_dataset

SPOS = Recipe(lr=0.1, weight_decay=4e-5, label_smoothing=0.1)
STATE = ROOT / "benchmarks" / "state" / "supernet"


class Cache:
    """A JSON file of finished jobs: a killed run redoes only the unfinished one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = json.loads(path.read_text()) if path.exists() else {}

    def get(self, key: str, compute):
        if key not in self.data:
            self.data[key] = compute()
            files.write_text(self.path, json.dumps(self.data, indent=1))
        return self.data[key]


def distinct_paths(space: ShuffleChoiceSpace, n: int, seed: int) -> list[tuple[int, ...]]:
    sampler, out = PathSampler(space, seed=seed), []
    while len(out) < n:
        path = tuple(int(c) for c in sampler.uniform(1)[0])
        if path not in out:
            out.append(path)
    return out


def candidate(space: ShuffleChoiceSpace, path):
    return space.decode(dict(zip(space.names, map(int, path), strict=True)))


def label(sampling: str, recal: int) -> str:
    return f"{sampling}_{'recal' if recal else 'inherited'}"


def tau(a, b) -> float:
    return round(float(kendalltau(a, b).statistic), 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="fashion-mnist:8000")
    ap.add_argument("--paths", type=int, default=50)
    ap.add_argument("--repeated", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--sa-epochs", type=int, default=2)
    ap.add_argument("--sn-epochs", type=int, default=20)
    ap.add_argument("--src-epochs", type=int, default=20)
    ap.add_argument("--ft-epochs", type=int, default=10)
    ap.add_argument("--score-images", type=int, default=250)
    ap.add_argument("--sn-lr", type=float, default=0.2)
    ap.add_argument("--sn-batch", type=int, default=64)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--final-epochs", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--state", type=Path, default=STATE)
    ap.add_argument("--tau-only", action="store_true", help="A-C only: the ranking, no search")
    ap.add_argument("--results", type=Path, default=RESULTS, help="folder of the result files")
    ap.add_argument("--stem", default="bench_supernet", help="result files' name prefix")
    args = ap.parse_args()
    torch.set_num_threads(2)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    args.state.mkdir(parents=True, exist_ok=True)
    cache = Cache(args.state / "cache.json")
    storage = f"{args.state}/search.log"
    data = load_dataset(args.dataset, seed=0, val_fraction=0.25)
    mnist = load_dataset("mnist5k", seed=0, val_fraction=0.25)
    space = ShuffleChoiceSpace()
    paths = distinct_paths(space, args.paths, seed=2026)
    mflops = PathSampler(space, seed=0).flops(np.array(paths)) / 1e6
    limit = round(float(np.median(mflops)), 3)

    def mflops_of(path) -> float:
        return float(PathSampler(space, seed=0).flops(np.array(path))[0]) / 1e6

    # A: stand-alone trainings
    def standalone(path, seed: int, epochs: int) -> dict:
        ev = TrainFromScratch(data=data, epochs=epochs, device=args.device, default_recipe=SPOS)
        e = ev.evaluate(space, candidate(space, path), seed=seed)
        return {"acc": e.value, "seconds": e.attrs["train_seconds"]}

    sa = {}
    for i, path in enumerate(paths):
        seeds = range(args.seeds) if i < args.repeated else (0,)
        for s in seeds:
            key = f"sa/{args.sa_epochs}/{','.join(map(str, path))}/{s}"
            sa[i, s] = cache.get(key, lambda p=path, s=s: standalone(p, s, args.sa_epochs))
            print(f"stand-alone {i} seed {s}: {sa[i, s]['acc']:.4f}", flush=True)
    acc0 = np.array([sa[i, 0]["acc"] for i in range(len(paths))])
    rep, seeds = range(args.repeated), range(args.seeds)
    acc = np.array([[sa[i, s]["acc"] for s in seeds] for i in rep])  # (repeated, seeds)
    acc_mean = acc.mean(axis=1)
    sa_seconds = sum(v["seconds"] for v in sa.values())
    seed0_seconds = sum(sa[i, 0]["seconds"] for i in range(len(paths)))

    # B: supernets (saved, so a rerun loads them)
    def supernet(name: str, dataset, config: SupernetConfig, init: str | None = None):
        out = args.state / name
        if not (out / "supernet.json").exists():
            start = load_supernet(args.state / init)[0] if init else None
            run = train_supernet(
                space,
                dataset,
                config=config,
                seed=0,
                device=args.device,
                checkpoint=args.state / f"{name}.ckpt",
                init=start,
            )
            save_supernet(run, out)
            (args.state / f"{name}.ckpt").unlink(missing_ok=True)
        net, _, info = load_supernet(out)
        return net, info

    def config(sampling: str, epochs: int) -> SupernetConfig:
        return SupernetConfig(
            sampling=sampling,
            epochs=epochs,
            batch_size=args.sn_batch,
            score_images=args.score_images,
            stop_turnover=0.0,
            recipe=Recipe(lr=args.sn_lr, weight_decay=4e-5, label_smoothing=0.1),
        )

    nets = {s: supernet(s, data, config(s, args.sn_epochs)) for s in ("uniform", "greedy")}

    # C: scores and tau
    def scores(name: str, net, recal: int) -> list[float]:
        ev = InheritWeights(supernet=net, data=data, recal_images=recal, device=args.device)
        return [ev.evaluate(space, candidate(space, p), seed=0).value for p in paths]

    score = {
        (s, r): np.array(cache.get(f"score/{s}/{r}", lambda s=s, r=r: scores(s, nets[s][0], r)))
        for s in nets
        for r in (1024, 0)
    }
    top = np.argsort(-acc_mean)[: args.repeated // 2]
    pairs = [(a, b) for a in seeds for b in seeds if a < b]
    half = args.seeds // 2
    tau_rows = [
        {
            "proxy": "stand-alone: one seed vs another (mean over pairs)",
            "tau_seed_mean": round(mean(tau(acc[:, a], acc[:, b]) for a, b in pairs), 3),
            "tau_better_half": round(mean(tau(acc[top, a], acc[top, b]) for a, b in pairs), 3),
        },
        {
            "proxy": f"stand-alone: mean of seeds <{half} vs mean of the others",
            "tau_seed_mean": tau(acc[:, :half].mean(1), acc[:, half:].mean(1)),
            "tau_better_half": tau(acc[top, :half].mean(1), acc[top, half:].mean(1)),
        },
    ]
    for (s, r), sc in score.items():
        info = nets[s][1]
        tau_rows.append(
            {
                "proxy": f"{s} supernet, BN {'recal ' + str(r) if r else 'inherited'}",
                "tau_seed_mean": tau(sc[: args.repeated], acc_mean),
                "tau_better_half": tau(sc[top], acc_mean[top]),
                "tau_all_vs_seed0": tau(sc, acc0),
                "train_seconds": round(info["seconds"]),
                "score_seconds": round(info["score_seconds"]),
                "steps": info["steps_trained"],
                "mean_score": round(float(sc.mean()), 4),
            }
        )

    cost_rows: list[dict] = []
    bridge_rows: list[dict] = []
    if not args.tau_only:  # the GPU check at scale needs the ranking only
        # D: search each supernet under the limit, retrain the winners
        def search(name: str, net, dataset, pool) -> dict:
            t0 = time.perf_counter()
            res = search_supernet(
                net,
                space,
                dataset,
                storage=storage,
                study_name=name,
                limits=Limits(mflops=limit),
                config=SearchConfig(trials=args.trials, final_top=0, device=args.device),
                pool=pool,
                progress=False,
            )
            best = max((t for t in res.study.trials if t.value is not None), key=lambda t: t.value)
            return {
                "path": [best.params[n] for n in space.names],
                "score": best.value,
                "seconds": time.perf_counter() - t0,
                "subnets": len([t for t in res.study.trials if t.value is not None]),
            }

        def pool(info) -> list:
            return [p for p, _ in info["pool"]]

        feasible = [i for i in range(len(paths)) if mflops[i] <= limit]
        winners = {
            "stand-alone (best of trained, seed 0)": {
                "path": list(paths[max(feasible, key=lambda i: acc0[i])]),
                "score": None,
                "seconds": seed0_seconds,
                "subnets": len(paths),
            }
        }
        for s, (net, info) in nets.items():
            found = cache.get(f"search/{s}", lambda s=s, n=net, i=info: search(s, n, data, pool(i)))
            winners[f"{s} supernet search"] = {
                **found,
                "seconds": info["seconds"] + found["seconds"],
            }

        # E: DetNAS transfer
        src = supernet("mnist-greedy", mnist, config("greedy", args.src_epochs))
        ft = supernet(
            "mnist-ft-fashion", data, config("greedy", args.ft_epochs), init="mnist-greedy"
        )
        found = cache.get("search/detnas", lambda: search("detnas", ft[0], data, pool(ft[1])))
        winners["DetNAS: MNIST supernet fine-tuned, searched on fashion"] = {
            **found,
            "seconds": src[1]["seconds"] + ft[1]["seconds"] + found["seconds"],
        }
        found = cache.get("search/mnist", lambda: search("mnist", src[0], mnist, pool(src[1])))
        winners["MNIST supernet searched on MNIST, winner transferred"] = {
            **found,
            "seconds": src[1]["seconds"] + found["seconds"],
        }
        cost_rows = []
        for route, w in winners.items():
            path = tuple(w["path"])
            finals = [
                cache.get(
                    f"final/{args.final_epochs}/{','.join(map(str, path))}/{s}",
                    lambda p=path, s=s: standalone(p, s, args.final_epochs),
                )["acc"]
                for s in (0, 1)
            ]
            cost_rows.append(
                {
                    "route": route,
                    "path": ",".join(map(str, path)),
                    "mflops": round(float(mflops_of(path)), 3),
                    "supernet_score": "" if w["score"] is None else round(w["score"], 4),
                    "retrained_acc_seed0": round(finals[0], 4),
                    "retrained_acc_seed1": round(finals[1], 4),
                    "retrained_mean": round(mean(finals), 4),
                    "route_seconds": round(w["seconds"]),
                    "subnets_scored_or_trained": w["subnets"],
                }
            )

        # F: predictor bridge
        bridge_rows = bridge(paths, acc0, score["greedy", 1024])

    facts = machine_facts()
    settings = {**vars(args), "state": str(args.state), "limit_mflops": limit}
    path_rows = [
        {
            "path": ",".join(map(str, p)),
            "mflops": round(float(mflops[i]), 3),
            "sa_seed0": sa[i, 0]["acc"],
            **{f"sa_seed{s}": sa[i, s]["acc"] if (i, s) in sa else "" for s in seeds[1:]},
            **{label(s, r): float(sc[i]) for (s, r), sc in score.items()},
        }
        for i, p in enumerate(paths)
    ]
    extra = {"settings": settings, "stand_alone_seconds_total": round(sa_seconds)}
    for stem, rows in (
        ("tau", tau_rows),
        ("cost", cost_rows),
        ("bridge", bridge_rows),
        ("paths", path_rows),
    ):
        if not rows:
            continue
        if stem != "paths":
            extra["table_markdown"] = print_table(rows, list(rows[-1]))
        write_results(f"{args.stem}_{stem}", rows, facts, extra=extra, folder=args.results)
    score = {k: v[: args.repeated] for k, v in score.items()}
    plot(acc_mean, score, tau_rows[2:], args.seeds, args.results / f"{args.stem}.png")


def bridge(paths, acc, sn_score, repeats: int = 20) -> list[dict]:
    """Held-out tau of XGBoost on one-hot choices, with and without the supernet score."""
    import xgboost as xgb

    onehot = np.eye(4)[np.array(paths)].reshape(len(paths), -1)
    feats = {"choices": onehot, "choices + supernet score": np.c_[onehot, sn_score]}
    rng = np.random.default_rng(0)
    n, half = len(paths), len(paths) // 2
    splits: dict[int, list] = {half: [], n - n // 5: []}
    for _ in range(repeats):
        order = rng.permutation(n)
        splits[half].append((order[:half], order[half:]))
        if len(splits[n - n // 5]) < repeats:
            for fold in np.array_split(order, 5):
                splits[n - n // 5].append((np.setdiff1d(order, fold), fold))
    rows = []
    for n_train, cut in splits.items():
        out = {"supernet score alone": [tau(sn_score[te], acc[te]) for _, te in cut]}
        for name, X in feats.items():
            out[f"xgboost on {name}"] = []
            for seed, (tr, te) in enumerate(cut):
                y = (acc[tr] - acc[tr].mean()) / acc[tr].std()
                model = xgb.XGBRegressor(
                    n_estimators=300,
                    max_depth=3,
                    learning_rate=0.05,
                    subsample=0.8,
                    colsample_bytree=0.8,
                    objective="reg:pseudohubererror",
                    random_state=seed,
                    n_jobs=1,
                ).fit(X[tr], y)
                out[f"xgboost on {name}"].append(tau(model.predict(X[te]), acc[te]))
        for name, taus in out.items():
            rows.append(
                {
                    "real_trainings": n_train,
                    "predictor": name,
                    "held_out": len(cut[0][1]),
                    "splits": len(taus),
                    "tau_mean": round(float(np.mean(taus)), 3),
                    "tau_std": round(float(np.std(taus)), 3),
                }
            )
    return rows


def plot(acc_mean, score, tau_rows, n_seeds: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(score), figsize=(4 * len(score), 3.6), sharey=True)
    for ax, ((s, r), sc), row in zip(axes, score.items(), tau_rows, strict=True):
        ax.scatter(sc, acc_mean, s=14)
        ax.set_title(f"{label(s, r)}: tau {row['tau_seed_mean']}", fontsize=9)
        ax.set_xlabel("supernet score (val acc)")
    axes[0].set_ylabel(f"stand-alone val acc (mean of {n_seeds} seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
