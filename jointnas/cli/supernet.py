"""``jointnas supernet train | search | eval``: the one-shot route, as thin calls of
``jointnas.supernet``.

``train`` writes a supernet directory (``supernet.safetensors`` + ``supernet.json``) and keeps a
resumable checkpoint there until it is done; ``search`` runs the Optuna search on a saved
supernet and retrains the winners; ``eval`` scores given or random subnets, with and without
BN recalibration.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from jointnas.cli.options import add_dataset, add_storage, positive_float, positive_int
from jointnas.errors import ConfigError
from jointnas.spaces.shufflenet_choice import LAYOUTS

CHECKPOINT = "supernet.ckpt"


def _choices(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(c) for c in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected choices like 0,1,2,3, got {text!r}") from None


def add_parser(sub) -> None:
    """Register ``supernet`` and its three subcommands on the main parser's ``sub``."""
    sn = sub.add_parser("supernet", help="one-shot: train a weight-sharing supernet, search it")
    cmds = sn.add_subparsers(dest="supernet_command", required=True)

    tr = cmds.add_parser("train", help="train a supernet (SPOS uniform or GreedyNAS paths)")
    add_dataset(tr)
    layouts = " | ".join(f"{k} ({v.resolution} px)" for k, v in LAYOUTS.items())
    layout_help = f"{layouts} (default: %(default)s)"
    tr.add_argument("--layout", default=next(iter(LAYOUTS)), help=layout_help)
    tr.add_argument("--sampling", default="greedy", choices=("greedy", "uniform"))
    tr.add_argument("--epochs", type=positive_int, default=10)
    tr.add_argument("--batch-size", type=positive_int, default=128)
    tr.add_argument("--flops-bins", type=int, default=0, help="uniform over N FLOPs bins")
    tr.add_argument("--score-images", type=positive_int, default=1000, help="GreedyNAS batch")
    tr.add_argument("--m", type=positive_int, default=10, help="GreedyNAS: paths scored")
    tr.add_argument("--k", type=positive_int, default=5, help="GreedyNAS: of them trained")
    tr.add_argument("--pool-size", type=positive_int, default=50)
    tr.add_argument("--init", metavar="DIR", help="fine-tune this saved supernet (DetNAS)")
    tr.add_argument("--out", default="jointnas-supernet", help="supernet directory")

    se = cmds.add_parser("search", help="Optuna search on a saved supernet, winners retrained")
    se.add_argument("--supernet", required=True, metavar="DIR")
    add_dataset(se)
    add_storage(se)
    se.add_argument("--study", default="supernet", help="search study NAME, retrains NAME.final")
    for key in ("mflops", "params", "acts"):
        kind = positive_float if key == "mflops" else positive_int
        se.add_argument(f"--max-{key}", type=kind, default=None)
    se.add_argument("--trials", type=positive_int, default=200)
    se.add_argument("--sampler", default="genetic", choices=("genetic", "nsga2", "random"))
    se.add_argument("--population", type=positive_int, default=20)
    se.add_argument("--recal-images", type=int, default=1024, help="0: inherited BN stats")
    se.add_argument("--final-top", type=int, default=3)
    se.add_argument("--final-epochs", type=int, default=10)
    se.add_argument("--batch-size", type=positive_int, default=128)
    se.add_argument("--out", default="jointnas-supernet-search", help="report directory")

    ev = cmds.add_parser("eval", help="supernet accuracy of subnets, with and without BN recal")
    ev.add_argument("--supernet", required=True, metavar="DIR")
    add_dataset(ev)
    ev.add_argument("--choices", type=_choices, action="append", metavar="C,C,...")
    ev.add_argument("--random", type=positive_int, default=0, help="also N random subnets")
    ev.add_argument("--recal-images", type=positive_int, default=1024)
    for p in (tr, se, ev):
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default: auto)")
        p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def cmd_supernet(args: argparse.Namespace) -> int:
    from jointnas.errors import ConfigError
    from jointnas.runs.context import RunSettings, load_data
    from jointnas.training.data import Dataset

    data = load_data(RunSettings.from_args(args))  # the data options, read as every run reads them
    if not isinstance(data, Dataset):
        raise ConfigError("a supernet trains on data held in memory; use --data memory or auto")
    return {"train": _train, "search": _search, "eval": _eval}[args.supernet_command](args, data)


def _train(args: argparse.Namespace, data) -> int:
    from jointnas.spaces.shufflenet_choice import ShuffleChoiceSpace
    from jointnas.supernet.training import (
        SupernetConfig,
        load_supernet,
        save_supernet,
        train_supernet,
    )

    try:
        space = ShuffleChoiceSpace(layout=args.layout)
    except ValueError as exc:
        raise ConfigError(f"--layout: {exc}") from None
    init = None
    if args.init is not None:
        init, init_space, _ = load_supernet(args.init)
        if init_space.fingerprint() != space.fingerprint():
            raise ConfigError(f"--init {args.init} is a supernet of another layout")
    config = SupernetConfig.from_args(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run = train_supernet(
        space,
        data,
        config=config,
        seed=args.seed,
        device=args.device,
        checkpoint=out / CHECKPOINT,
        init=init,
        progress=not args.no_progress,
    )
    save_supernet(run, out)
    (out / CHECKPOINT).unlink(missing_ok=True)
    info = run.info
    print(
        f"supernet ({config.sampling}) trained {info['epochs_trained']} epochs in "
        f"{info['seconds']:.0f} s (scoring {info['score_seconds']:.0f} s) -> {out}"
    )
    return 0


def _search(args: argparse.Namespace, data) -> int:
    from jointnas.runs.supernet_search import SearchConfig, search_supernet
    from jointnas.spaces.recipe import Recipe
    from jointnas.supernet.training import load_supernet

    supernet, space, info = load_supernet(args.supernet)
    config = SearchConfig.from_args(args)
    result = search_supernet(
        supernet,
        space,
        data,
        config=config,
        pool=[p for p, _ in info.get("pool", [])],
        recipe=Recipe(**info["config"]["recipe"]),
        progress=not args.no_progress,
    )
    best = max(result.study.best_trials, key=lambda t: t.value, default=None)
    if best is not None:
        print(f"best supernet score {best.value:.4f} (trial {best.number}, {best.params})")
    for t in result.finals:
        print(
            f"final trial {t.number}: stand-alone {t.value:.4f}, supernet "
            f"{t.user_attrs.get('predicted_acc', float('nan')):.4f}, "
            f"{t.user_attrs.get('mflops', float('nan')):.3f} MFLOPs"
        )
    if result.best is not None:
        print(f"best: {json.dumps({k: result.best[k] for k in ('val_acc', 'predicted_acc')})}")
    return 0


def _eval(args: argparse.Namespace, data) -> int:
    from jointnas.evaluators import InheritWeights
    from jointnas.supernet.paths import PathSampler
    from jointnas.supernet.training import load_supernet

    supernet, space, _ = load_supernet(args.supernet)
    paths = list(args.choices or [])
    if args.random:
        paths += [tuple(p) for p in PathSampler(space, seed=args.seed).uniform(args.random)]
    if not paths:
        raise ConfigError("give subnets to score: --choices C,C,... and/or --random N")
    recal = InheritWeights(
        supernet=supernet, data=data, recal_images=args.recal_images, device=args.device
    )
    kept = InheritWeights(supernet=supernet, data=data, recal_images=0, device=args.device)
    print("choices                      mflops  recalibrated  inherited-BN")
    for path in paths:
        if len(path) != len(space.names):
            raise ConfigError(f"--choices needs {len(space.names)} values, got {len(path)}")
        try:
            candidate = space.decode(dict(zip(space.names, map(int, path), strict=True)))
        except ValueError as exc:
            raise ConfigError(f"--choices {','.join(map(str, path))}: {exc}") from None
        task = {"num_classes": data.num_classes, "in_channels": data.in_channels}
        mflops = space.cost(candidate.arch, **task).mflops
        a = recal.evaluate(space, candidate, seed=0).value
        b = kept.evaluate(space, candidate, seed=0).value
        print(f"{','.join(map(str, path)):<28} {mflops:6.2f}  {a:12.4f}  {b:12.4f}")
    return 0
