"""``jointnas`` command line: each command parses, calls one library function, prints.

Errors caused by input (bad options, datasets, storages, impossible limits) print one line
``jointnas: error: ...`` on stderr and exit with status 2; nothing stored is changed by them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from jointnas.data import BUILTIN_SOURCES, DatasetError
from jointnas.errors import JointNASError

DEFAULT_STORAGE = "sqlite:///jointnas.db"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the full usage is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _add_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help="Optuna storage URL, or a journal file *.log/*.journal (default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="jointnas",
        description="Joint architecture + training-recipe search (FBNetV3 JointNAS) on Optuna.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="search under a resource limit, training real candidates")
    _add_storage(run)
    run.add_argument("--study", default="jointnas", help="study name (default: %(default)s)")
    run.add_argument(
        "--preset",
        default="small",
        choices=["small", "imagenet"],
        help="search space preset (default: %(default)s)",
    )
    run.add_argument(
        "--dataset",
        default="mnist5k",
        help=f"{' | '.join(BUILTIN_SOURCES)} | path to .npz (x, y) | ImageFolder "
        "directory (default: %(default)s)",
    )
    run.add_argument(
        "--max-mflops",
        type=_positive_float,
        default=2.0,
        help="MFLOPs limit, multiply-adds (default: %(default)s)",
    )
    run.add_argument(
        "--max-params",
        type=_positive_int,
        default=None,
        help="parameter-count limit (default: none)",
    )
    run.add_argument(
        "--trials",
        type=_positive_int,
        default=20,
        help="trained candidates in the study (default: %(default)s)",
    )
    run.add_argument(
        "--epochs",
        type=_positive_int,
        default=2,
        help="early-stop training budget per candidate (default: %(default)s)",
    )
    run.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    run.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default: auto)")
    run.add_argument("--batch-size", type=_positive_int, default=128)
    run.add_argument("--top", type=_positive_int, default=5, help="rows in the final table")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    dash = sub.add_parser("dashboard", help="open optuna-dashboard on the storage")
    _add_storage(dash)
    dash.add_argument("--host", default="127.0.0.1")
    dash.add_argument("--port", type=_positive_int, default=8080)
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    import optuna

    from jointnas.perf import tune_malloc
    from jointnas.pipeline import RunConfig, run
    from jointnas.report import best_trials_table, state_counts

    config = RunConfig(
        storage=args.storage,
        study_name=args.study,
        preset=args.preset,
        dataset=args.dataset,
        max_mflops=args.max_mflops,
        max_params=args.max_params,
        trials=args.trials,
        epochs=args.epochs,
        seed=args.seed,
        device=args.device,
        batch_size=args.batch_size,
    )
    tune_malloc()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = run(config, progress=not args.no_progress)
    table = best_trials_table(study, top=args.top)
    print(f"study {study.study_name!r} in {args.storage}: {state_counts(study)}")
    print(table.to_string(index=False) if not table.empty else "no completed trials")
    print(f"see it in the browser: jointnas dashboard --storage {args.storage}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    import optuna_dashboard

    from jointnas.storage import open_storage

    storage = open_storage(args.storage)
    print(f"optuna-dashboard on http://{args.host}:{args.port} (Ctrl-C to stop)")
    optuna_dashboard.run_server(storage, host=args.host, port=args.port)
    return 0


COMMANDS = {"run": cmd_run, "dashboard": cmd_dashboard}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (JointNASError, DatasetError) as exc:
        print(f"jointnas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jointnas: interrupted; completed trials are kept in the storage", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
