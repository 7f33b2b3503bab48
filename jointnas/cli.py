"""``jointnas`` command line: each command parses, calls one library function, prints.

Errors caused by input (bad options, datasets, storages, impossible limits) print one line
``jointnas: error: ...`` on stderr and exit with status 2; nothing stored is changed by them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from jointnas.data import BUILTIN_SOURCES, DatasetError
from jointnas.errors import ConfigError, JointNASError

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


def _epochs(text: str) -> int | str:
    return text if text == "calibrated" else _positive_int(text)


def _add_search_options(
    p: argparse.ArgumentParser, *, trials: int, trials_help: str = "trained candidates"
) -> None:
    """Options shared by every command that trains candidates of a space under a limit."""
    _add_storage(p)
    p.add_argument("--study", default="jointnas", help="study name (default: %(default)s)")
    p.add_argument(
        "--preset",
        default="small",
        choices=["small", "imagenet"],
        help="search space preset (default: %(default)s)",
    )
    p.add_argument(
        "--dataset",
        default="mnist5k",
        help=f"{' | '.join(BUILTIN_SOURCES)} | path to .npz (x, y) | ImageFolder "
        "directory (default: %(default)s)",
    )
    p.add_argument(
        "--max-mflops",
        type=_positive_float,
        default=2.0,
        help="MFLOPs limit, multiply-adds (default: %(default)s)",
    )
    p.add_argument("--max-params", type=_positive_int, default=None, help="parameter-count limit")
    p.add_argument(
        "--trials", type=_positive_int, default=trials, help=f"{trials_help} (default: %(default)s)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default: auto)")
    p.add_argument("--batch-size", type=_positive_int, default=128)
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _run_config(args: argparse.Namespace, **overrides):
    from jointnas.pipeline import RunConfig

    stages = {
        k: getattr(args, k)
        for k in ("predictor", "fine_generations", "final_top", "final_epochs", "out", "stop_after")
        if hasattr(args, k)
    }
    if getattr(args, "fix_arch", None):
        from jointnas.export import read_arch

        stages["fix_arch"] = read_arch(args.fix_arch)
    fields = dict(
        **stages,
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
    return RunConfig(**{**fields, **overrides})


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="jointnas",
        description="Joint architecture + training-recipe search (FBNetV3 JointNAS) on Optuna.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="search under a resource limit, training real candidates")
    _add_search_options(run, trials=20)
    run.add_argument(
        "--epochs",
        type=_epochs,
        default=2,
        help="early-stop training budget per candidate, or 'calibrated' for the epoch that "
        "`jointnas calibrate` recommended on this study (default: %(default)s)",
    )
    run.add_argument("--top", type=_positive_int, default=5, help="rows in the final table")
    run.add_argument(
        "--calibrate",
        action="store_true",
        help="first run `jointnas calibrate` (12 candidates, 6 epochs) unless the study has one, "
        "then early-stop at its recommended epoch",
    )
    run.add_argument("--predictor", choices=["xgboost", "mlp"], default="xgboost")
    run.add_argument("--fine-generations", type=int, default=20, help="0 skips the fine search")
    run.add_argument("--final-top", type=int, default=3, help="candidates trained in full")
    run.add_argument("--final-epochs", type=int, default=6, help="full training budget")
    run.add_argument("--out", default="jointnas-out", help="artifact directory")
    run.add_argument(
        "--fix-arch",
        default=None,
        metavar="FILE",
        help="AutoTrain: JSON file with an architecture (a params dict, or a best.json); only "
        "the training recipe is searched",
    )
    run.add_argument(
        "--stop-after",
        choices=["coarse", "predictor", "fine", "final"],
        default="final",
        help="last stage to run (default: %(default)s)",
    )

    cal = sub.add_parser(
        "calibrate", help="measure how early training can stop and still rank candidates"
    )
    _add_search_options(cal, trials=12, trials_help="candidates trained for the full budget")
    cal.add_argument(
        "--epochs", type=_positive_int, default=6, help="full budget (default: %(default)s)"
    )
    cal.add_argument(
        "--threshold",
        type=_positive_float,
        default=0.8,
        help="Kendall tau vs the final ranking to reach (default: %(default)s)",
    )
    cal.add_argument("--plot", default="calibration.png", help="PNG of the curve")

    pred = sub.add_parser("predictor", help="fit or evaluate an accuracy predictor on a study")
    pred_sub = pred.add_subparsers(dest="predictor_command", required=True)
    fit = pred_sub.add_parser("fit", help="fit on a study's completed trials and save")
    _add_storage(fit)
    fit.add_argument("--study", default="jointnas", help="study name (default: %(default)s)")
    fit.add_argument("--kind", choices=["mlp", "xgboost"], default="xgboost")
    fit.add_argument("--out", required=True, help="directory to write the predictor to")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument(
        "--cv", type=int, default=5, help="folds of the stored CV metrics; 0 skips (default: 5)"
    )
    ev = pred_sub.add_parser("eval", help="ranking metrics of a saved predictor on a study")
    ev.add_argument("directory", help="predictor directory")
    _add_storage(ev)
    ev.add_argument("--study", default="jointnas", help="study name (default: %(default)s)")

    exp = sub.add_parser("export", help="a trial's arch/recipe JSON and weights (safetensors)")
    _add_storage(exp)
    exp.add_argument("--study", default="jointnas", help="study name (default: %(default)s)")
    exp.add_argument("--trial", type=int, required=True, help="trial number")
    exp.add_argument("--out", required=True, help="directory to write")
    exp.add_argument(
        "--epochs",
        type=_positive_int,
        default=6,
        help="training budget when the trial has no saved weights (default: %(default)s)",
    )
    exp.add_argument("--device", default="auto")

    srch = sub.add_parser("search", help="best predicted candidates under a limit, no training")
    srch.add_argument("--predictor", required=True, help="predictor directory")
    srch.add_argument("--max-mflops", type=_positive_float, default=None, help="MFLOPs limit")
    srch.add_argument("--max-params", type=_positive_int, default=None, help="parameter limit")
    srch.add_argument("--top", type=_positive_int, default=5, help="candidates to print")
    srch.add_argument("--seed", type=int, default=0)
    srch.add_argument("--generations", type=_positive_int, default=30)
    srch.add_argument("--json", action="store_true", help="print JSON instead of a table")

    par = sub.add_parser("pareto", help="predicted accuracy vs MFLOPs front, one predictor")
    par.add_argument("--predictor", required=True, help="predictor directory")
    par.add_argument("--min-mflops", type=_positive_float, default=0.5)
    par.add_argument("--max-mflops", type=_positive_float, default=4.0)
    par.add_argument("--points", type=_positive_int, default=8, help="limits, log-spaced")
    par.add_argument("--seed", type=int, default=0)
    par.add_argument("--out", default="pareto.png", help="PNG to draw (default: %(default)s)")
    par.add_argument("--json", action="store_true", help="print JSON instead of a table")

    dash = sub.add_parser("dashboard", help="open optuna-dashboard on the storage")
    _add_storage(dash)
    dash.add_argument("--host", default="127.0.0.1")
    dash.add_argument("--port", type=_positive_int, default=8080)
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    import optuna

    from jointnas.perf import tune_malloc
    from jointnas.pipeline import run
    from jointnas.report import best_trials_table, state_counts

    if args.calibrate or args.epochs == "calibrated":
        from jointnas.calibrate import calibrate, stored_calibration

        if args.calibrate:
            try:
                stored_calibration(args.storage, args.study)
            except ConfigError:
                calibrate(_run_config(args, trials=12, epochs=6), progress=not args.no_progress)
        cal = stored_calibration(args.storage, args.study)
        config = _run_config(args, epochs=cal["recommended_epochs"], schedule_epochs=cal["epochs"])
        print(
            f"early stop at epoch {config.epochs} of a {cal['epochs']}-epoch schedule "
            f"(calibrated: Kendall tau {cal['kendall_tau'][config.epochs - 1]:.2f})"
        )
    else:
        config = _run_config(args)
    tune_malloc()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = run(config, progress=not args.no_progress)
    print(f"study {study.study_name!r} in {args.storage}: {state_counts(study)}")
    for stage, title in (("coarse", "coarse search (early-stopped)"), ("final", "final training")):
        table = best_trials_table(study, top=args.top, stage=stage)
        if not table.empty:
            print(f"\n{title}:\n{table.to_string(index=False)}")
    fine = study.user_attrs.get("jointnas:fine")
    if fine:
        print(f"\nfine search: {fine['scored']} candidates scored in {fine['seconds']:.1f} s")
    if (Path(config.out) / "best.json").is_file():
        print(f"best arch/recipe, weights, predictor: {config.out}/")
    print(f"see it in the browser: jointnas dashboard --storage {args.storage}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    import optuna_dashboard

    from jointnas.storage import open_storage

    storage = open_storage(args.storage)
    print(f"optuna-dashboard on http://{args.host}:{args.port} (Ctrl-C to stop)")
    optuna_dashboard.run_server(storage, host=args.host, port=args.port)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    import optuna

    from jointnas.calibrate import calibrate
    from jointnas.perf import tune_malloc

    tune_malloc()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    result = calibrate(
        _run_config(args),
        threshold=args.threshold,
        progress=not args.no_progress,
        plot=args.plot,
    )
    print(f"fidelity calibration of {result['candidates']} candidates, {result['epochs']} epochs:")
    print("epoch  kendall_tau  spearman")
    for e, (tau, rho) in enumerate(
        zip(result["kendall_tau"], result["spearman"], strict=True), start=1
    ):
        print(f"{e:5d}  {tau:11.3f}  {rho:8.3f}")
    print(
        f"recommended early stop: epoch {result['recommended_epochs']} (tau >= "
        f"{result['threshold']}); stored on study {args.study!r}; curve in {args.plot}"
    )
    print(f"use it: jointnas run --study {args.study} --epochs calibrated")
    return 0


def cmd_predictor(args: argparse.Namespace) -> int:
    from jointnas.predictors import eval_on_study, fit_on_study
    from jointnas.predictors.card import metrics_line, write_card

    if args.predictor_command == "fit":
        predictor = fit_on_study(
            args.storage, args.study, kind=args.kind, seed=args.seed, cv=args.cv
        )
        out = predictor.save(args.out)
        write_card(out, command="jointnas " + " ".join(args.argv))
        print(f"fitted {args.kind} predictor on {predictor.training['n']} trials of {args.study!r}")
        if "cv" in predictor.metrics:
            print(f"{args.cv}-fold CV: {metrics_line(predictor.metrics['cv'])}")
        print(f"saved to {out}")
    else:
        metrics = eval_on_study(args.directory, args.storage, args.study)
        print(f"{args.directory} on {args.study!r}: {metrics_line(metrics)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from jointnas.export import export_trial

    summary = export_trial(
        args.storage, args.study, args.trial, args.out, epochs=args.epochs, device=args.device
    )
    print(
        f"trial {args.trial} ({summary['stage']}, value {summary['value']:.4f}) -> {args.out}/"
        f"candidate.json + weights.safetensors ({summary['weights']})"
    )
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    import time

    from jointnas.objective import Limits
    from jointnas.predictors import load_predictor
    from jointnas.reuse import search_best

    start = time.perf_counter()
    if args.max_mflops is None and args.max_params is None:
        raise ConfigError("give a limit: --max-mflops and/or --max-params")
    predictor = load_predictor(args.predictor)
    frame = search_best(
        predictor,
        Limits(mflops=args.max_mflops, params=args.max_params),
        top=args.top,
        seed=args.seed,
        generations=args.generations,
    )
    if args.json:
        print(frame.to_json(orient="records", indent=2))
    else:
        print(_show(frame).to_string(index=False))
        print(
            f"{frame.attrs['scored']} candidates scored in {frame.attrs['seconds']:.2f} s; "
            f"{time.perf_counter() - start:.1f} s in all, no training"
        )
    return 0


def cmd_pareto(args: argparse.Namespace) -> int:
    import numpy as np

    from jointnas.predictors import load_predictor
    from jointnas.reuse import pareto, plot_pareto

    if args.min_mflops >= args.max_mflops:
        raise ConfigError("--min-mflops must be below --max-mflops")
    predictor = load_predictor(args.predictor)
    limits = np.geomspace(args.min_mflops, args.max_mflops, args.points).round(3).tolist()
    frame = pareto(predictor, limits, seed=args.seed)
    path = plot_pareto(frame, args.out, title=f"Predicted front: {args.predictor}")
    if args.json:
        print(frame.to_json(orient="records", indent=2))
    else:
        print(_show(frame, extra=("limit_mflops", "on_front")).to_string(index=False))
        print(f"front drawn in {path}")
    return 0


def _show(frame, extra: tuple[str, ...] = ()):
    cols = [*extra, "predicted_acc", "mflops", "params", "resolution", "optimizer", "lr", "ema"]
    out = frame[[c for c in cols if c in frame]].copy()
    return out.round({"predicted_acc": 4, "mflops": 3, "lr": 4})


COMMANDS = {
    "export": cmd_export,
    "search": cmd_search,
    "pareto": cmd_pareto,
    "run": cmd_run,
    "calibrate": cmd_calibrate,
    "predictor": cmd_predictor,
    "dashboard": cmd_dashboard,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
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
