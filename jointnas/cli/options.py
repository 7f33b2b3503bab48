"""Value checks and options several ``jointnas`` commands share, each a one-line error."""

from __future__ import annotations

import argparse

from jointnas.training.augment import POLICIES
from jointnas.training.data import BUILTIN_SOURCES, MODES

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
    """``--dataset`` and how it is held and augmented (``jointnas.training.data``)."""
    p.add_argument("--dataset", default="mnist5k", help=DATA_HELP)
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        choices=MODES,
        default="auto",
        help="hold the decoded images in memory (uint8), stream them from disk with worker "
        "processes, or pick by size: auto streams an image folder whose decoded size exceeds "
        "min(1 GiB, a quarter of free memory) (default: %(default)s)",
    )
    g.add_argument(
        "--augment",
        choices=("auto", *POLICIES),
        default="auto",
        help="base train-time augmentation: crop (shift with padding), rrc (random-resized "
        "crop), -flip adds horizontal flips; auto: rrc-flip for image folders, crop-flip for "
        "fashion-mnist, crop (no flip) for .npz, none for digits (default: %(default)s)",
    )
    g.add_argument(
        "--image-size",
        type=positive_int,
        default=None,
        help="stored resolution of an image folder held in memory (default: the space's "
        "largest input size; streaming decodes at each candidate's)",
    )
    g.add_argument(
        "--loader-workers",
        type=int,
        default=None,
        help="processes decoding a streamed dataset (default: CPUs - 1, at most 8)",
    )
    g.add_argument(
        "--max-steps-per-epoch",
        type=positive_int,
        default=None,
        help="cap every training epoch at N steps (a smoke test of a large set)",
    )
