"""Value checks and options several ``jointnas`` commands share, each a one-line error."""

from __future__ import annotations

import argparse

from jointnas.training.data import BUILTIN_SOURCES

DEFAULT_STORAGE = "sqlite:///jointnas.db"
DATA_HELP = f"{' | '.join(BUILTIN_SOURCES)}[:N] | .npz | ImageFolder (default: %(default)s)"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def add_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help="Optuna storage URL, or a journal file *.log/*.journal (default: %(default)s)",
    )


def add_dataset(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="mnist5k", help=DATA_HELP)
