"""The ``jointnas`` argument parser: commands, options, and value checks with one-line errors."""

from __future__ import annotations

import argparse
from typing import NoReturn

from jointnas.cli.design import add_parser as add_design_parsers
from jointnas.cli.options import add_dataset, add_storage, positive_float, positive_int
from jointnas.cli.supernet import add_parser as add_supernet_parser
from jointnas.runs.config import DEFAULT_SPACE


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the full usage is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_space(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--space",
        default=DEFAULT_SPACE,
        help="registered search space; `jointnas spaces` lists them (default: %(default)s)",
    )


def _devices(text: str) -> tuple[str, ...]:
    devices = tuple(d.strip() for d in text.split(",") if d.strip())
    if not devices:
        raise argparse.ArgumentTypeError(f"expected a comma-separated device list, got {text!r}")
    return devices


def _exponent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not -float("inf") < value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number <= 0, got {text}")
    return value


class _Exponents(argparse.Action):
    """``W`` (both sides of the target) or ``ALPHA BETA`` (at or below it, above it)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if len(values) > 2:
            parser.error(f"argument {option_string}: expected one or two numbers, got {values}")
        setattr(namespace, self.dest, (values[0], values[-1]))


def _epochs(text: str) -> int | str:
    return text if text == "calibrated" else positive_int(text)


def _add_search_options(
    p: argparse.ArgumentParser, *, trials: int, trials_help: str = "trained candidates"
) -> None:
    """Options shared by every command that trains candidates of a space under a limit."""
    add_storage(p)
    p.add_argument("--study", default="jointnas", help="study name (default: %(default)s)")
    _add_space(p)
    p.add_argument("--preset", default=None, help=argparse.SUPPRESS)  # replaced by --space
    add_dataset(p)
    p.add_argument(
        "--max-mflops",
        type=positive_float,
        default=2.0,
        help="MFLOPs limit, multiply-adds (default: %(default)s)",
    )
    p.add_argument("--max-params", type=positive_int, default=None, help="parameter-count limit")
    p.add_argument("--max-acts", type=positive_int, default=None, help="activation-count limit")
    p.add_argument(
        "--regnet-limits",
        action="store_true",
        help="also RegNet's complexity limits, relative to each candidate's own FLOPs f (GF): "
        "acts <= 6.5*sqrt(f) M and params <= 3 + 5.5*f M",
    )
    p.add_argument(
        "--trials", type=positive_int, default=trials, help=f"{trials_help} (default: %(default)s)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default: auto)")
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="jointnas",
        description="Joint architecture + training-recipe search (JointNAS) on Optuna.",
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
    run.add_argument("--top", type=positive_int, default=5, help="rows in the final table")
    run.add_argument(
        "--target-mflops",
        type=positive_float,
        default=None,
        metavar="T",
        help="optimise MnasNet's reward accuracy * (MFLOPs / T)^w instead of accuracy: a soft "
        "constraint beside the hard limits (default: off)",
    )
    run.add_argument(
        "--reward-exponent",
        type=_exponent,
        nargs="+",
        action=_Exponents,
        default=None,
        metavar="W",
        help="the reward's w (<= 0; default -0.07 as MnasNet/EfficientNet); two values: w at or "
        "below T, then w above it (MnasNet's hard-ish: 0 -1)",
    )
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

    run.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="local processes training coarse candidates in parallel; needs a PostgreSQL URL "
        "or a journal file *.log as --storage (default: %(default)s)",
    )
    run.add_argument(
        "--devices",
        type=_devices,
        default=None,
        metavar="DEV,DEV",
        help="devices the local workers take in turn, e.g. cuda:0,cuda:1 (default: --device; "
        "with auto/cuda, every visible GPU in turn)",
    )
    run.add_argument(
        "--startup-trials",
        type=positive_int,
        default=None,
        help="quasi-random coarse trials before the surrogate proposes (default: searched "
        "params + 1, at most 10)",
    )
    run.add_argument(
        "--heartbeat",
        type=positive_int,
        default=60,
        help="seconds between a running trial's heartbeats; a trial silent for 3 beats (its "
        "process was killed) is retrained (default: %(default)s)",
    )

    wrk = sub.add_parser(
        "worker", help="join a `jointnas run` study and train coarse candidates until its budget"
    )
    add_storage(wrk)
    wrk.add_argument("--study", default="jointnas", help="study name (default: %(default)s)")
    wrk.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default: auto)")
    wrk.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    wrk.add_argument("--no-progress", action="store_true", help="hide progress bars")

    cal = sub.add_parser(
        "calibrate", help="measure how early training can stop and still rank candidates"
    )
    _add_search_options(cal, trials=12, trials_help="candidates trained for the full budget")
    cal.add_argument(
        "--epochs", type=positive_int, default=6, help="full budget (default: %(default)s)"
    )
    cal.add_argument(
        "--threshold",
        type=positive_float,
        default=0.8,
        help="Kendall tau vs the final ranking to reach (default: %(default)s)",
    )
    cal.add_argument("--plot", default="calibration.png", help="PNG of the curve")

    pred = sub.add_parser("predictor", help="fit or evaluate an accuracy predictor on a study")
    pred_sub = pred.add_subparsers(dest="predictor_command", required=True)
    fit = pred_sub.add_parser("fit", help="fit on a study's completed trials and save")
    add_storage(fit)
    fit.add_argument("--study", default="jointnas", help="study name (default: %(default)s)")
    fit.add_argument("--kind", choices=["mlp", "xgboost"], default="xgboost")
    fit.add_argument("--out", required=True, help="directory to write the predictor to")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument(
        "--cv", type=int, default=5, help="folds of the stored CV metrics; 0 skips (default: 5)"
    )
    ev = pred_sub.add_parser("eval", help="ranking metrics of a saved predictor on a study")
    ev.add_argument("directory", help="predictor directory")
    add_storage(ev)
    ev.add_argument("--study", default="jointnas", help="study name (default: %(default)s)")

    exp = sub.add_parser("export", help="a trial's arch/recipe JSON and weights (safetensors)")
    add_storage(exp)
    exp.add_argument("--study", default="jointnas", help="study name (default: %(default)s)")
    exp.add_argument("--trial", type=int, required=True, help="trial number")
    exp.add_argument("--out", required=True, help="directory to write")
    exp.add_argument(
        "--epochs",
        type=positive_int,
        default=6,
        help="training budget when the trial has no saved weights (default: %(default)s)",
    )
    exp.add_argument("--device", default="auto")

    srch = sub.add_parser("search", help="best predicted candidates under a limit, no training")
    srch.add_argument("--predictor", required=True, help="predictor directory")
    srch.add_argument("--max-mflops", type=positive_float, default=None, help="MFLOPs limit")
    srch.add_argument("--max-params", type=positive_int, default=None, help="parameter limit")
    srch.add_argument("--top", type=positive_int, default=5, help="candidates to print")
    srch.add_argument("--seed", type=int, default=0)
    srch.add_argument("--generations", type=positive_int, default=30)
    srch.add_argument("--json", action="store_true", help="print JSON instead of a table")

    par = sub.add_parser("pareto", help="predicted accuracy vs MFLOPs front, one predictor")
    par.add_argument("--predictor", required=True, help="predictor directory")
    par.add_argument("--min-mflops", type=positive_float, default=0.5)
    par.add_argument("--max-mflops", type=positive_float, default=4.0)
    par.add_argument("--points", type=positive_int, default=8, help="limits, log-spaced")
    par.add_argument("--seed", type=int, default=0)
    par.add_argument("--out", default="pareto.png", help="PNG to draw (default: %(default)s)")
    par.add_argument("--json", action="store_true", help="print JSON instead of a table")

    spc = sub.add_parser("spaces", help="list the registered search spaces")
    spc.add_argument("--json", action="store_true", help="print JSON instead of a table")

    desc = sub.add_parser("describe", help="one network of a space: parts, MFLOPs, params, acts")
    _add_space(desc)
    desc.add_argument(
        "--preset", default=None, help="a named network of the space (default: smallest)"
    )
    desc.add_argument("--arch", default=None, metavar="FILE.json", help="architecture params")
    desc.add_argument("--num-classes", type=positive_int, default=None)
    desc.add_argument("--in-channels", type=positive_int, default=None)
    desc.add_argument("--resolution", type=positive_int, default=None)
    desc.add_argument("--json", action="store_true", help="print JSON instead of a table")

    add_design_parsers(sub)
    add_supernet_parser(sub)
    dash = sub.add_parser("dashboard", help="open optuna-dashboard on the storage")
    add_storage(dash)
    dash.add_argument("--host", default="127.0.0.1")
    dash.add_argument("--port", type=positive_int, default=8080)
    return parser
