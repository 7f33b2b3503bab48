"""Reuse a fitted accuracy predictor under a NEW resource limit: seconds, no training.

A predictor fitted once (``jointnas run`` leaves one in its output directory, ``jointnas predictor
fit`` makes one from any study) already knows the space; a new limit only changes which
candidates are feasible. ``jointnas.tools.reuse.search_best`` runs the vectorised fine search under
the limit and returns the best predicted candidates. ``--train-best N`` then trains the top N for
real, to see how far the prediction is from the truth.

    python studies/reuse_predictor.py --predictor predictors/mnist5k-xgboost --max-mflops 0.5
    python studies/reuse_predictor.py --max-mflops 1 --max-params 60000 --train-best 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

import jointnas
from jointnas.predictors import PredictorError, load_predictor
from jointnas.tools.reuse import search_best

SHOWN = ("predicted_acc", "mflops", "params", "resolution", "stem_width", "optimizer", "lr", "ema")


def show(frame: pd.DataFrame, columns: tuple[str, ...] = SHOWN) -> str:
    table = frame[[c for c in columns if c in frame]].copy()
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.to_string(index=False, float_format=lambda v: f"{v:.4g}")


def train_best(
    predictor: jointnas.predictors.Predictor, frame: pd.DataFrame, args: argparse.Namespace
) -> pd.DataFrame:
    """Train the first ``args.train_best`` rows for real; true vs predicted accuracy."""
    space = predictor.space
    data = jointnas.load_dataset(args.dataset, seed=args.seed)
    task = predictor.task
    if (data.num_classes, data.in_channels) != (task.num_classes, task.in_channels):
        raise PredictorError(
            f"the predictor was fitted for {task.num_classes} classes and {task.in_channels} "
            f"channel(s); {args.dataset!r} has {data.num_classes} and {data.in_channels}"
        )
    rows = []
    for rank, record in enumerate(frame.head(args.train_best).to_dict("records"), start=1):
        candidate = space.decode(space.validate({k: record[k] for k in space.distributions}))
        model = jointnas.build_model(
            candidate.arch, data.num_classes, data.in_channels, seed=args.seed
        )
        result = jointnas.train(
            model,
            candidate.recipe,
            data,
            epochs=args.epochs,
            seed=args.seed,
            resolution=candidate.arch.resolution,
        )
        rows.append(
            {
                "rank": rank,
                "predicted_acc": record["predicted_acc"],
                "true_acc": result.final_acc,
                "error": result.final_acc - record["predicted_acc"],
                "mflops": record["mflops"],
                "train_s": result.seconds,
            }
        )
    return pd.DataFrame(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictor", default="predictors/mnist5k-xgboost", help="directory")
    parser.add_argument("--max-mflops", type=float, default=1.0)
    parser.add_argument("--max-params", type=int, default=None)
    parser.add_argument("--top", type=int, default=5, help="best predicted candidates to show")
    parser.add_argument("--generations", type=int, default=30, help="fine-search generations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-best", type=int, default=0, metavar="N", help="train the top N")
    parser.add_argument("--dataset", default="mnist5k", help="what --train-best trains on")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of --train-best")
    args = parser.parse_args()
    try:
        limits = jointnas.Limits(mflops=args.max_mflops, params=args.max_params)
    except ValueError as exc:
        parser.error(str(exc))
    if not limits.active():
        parser.error("give a limit: --max-mflops and/or --max-params")

    start = time.perf_counter()
    if not Path(args.predictor).is_dir():
        print(
            f"error: no predictor directory at {args.predictor!r}; fit one with "
            "`jointnas predictor fit --out DIR` (or run `jointnas run`) and pass --predictor DIR",
            file=sys.stderr,
        )
        return 2
    try:
        predictor = load_predictor(args.predictor)
        frame = search_best(
            predictor,
            limits,
            top=max(args.top, args.train_best),
            seed=args.seed,
            generations=args.generations,
        )
    except (PredictorError, jointnas.InfeasibleConstraintError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    under = ", ".join(f"{k} <= {v:g}" for k, v in limits.active().items())
    print(f"best predicted candidates with {under} ({args.predictor}):")
    print(show(frame.head(args.top)))
    print(
        f"{frame.attrs['scored']} candidates scored in {frame.attrs['seconds']:.2f} s; "
        f"{seconds:.2f} s in all, no training"
    )
    if args.train_best > 0:
        try:
            trained = train_best(predictor, frame, args)
        except (PredictorError, jointnas.DatasetError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"\ntrained for real ({args.epochs} epochs on {args.dataset}): true vs predicted")
        print(trained.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
