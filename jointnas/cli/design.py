"""``jointnas edf`` and ``jointnas scale``: the design-space commands' options."""

from __future__ import annotations

import argparse

from jointnas.cli.options import add_dataset, add_storage, positive_int


def _names(text: str) -> tuple[str, ...]:
    out = tuple(n.strip() for n in text.split(",") if n.strip())
    if not out:
        raise argparse.ArgumentTypeError(f"expected comma-separated space names, got {text!r}")
    return out


def _floats(text: str) -> tuple[float, ...]:
    """``A,B,...`` as numbers (their ranges are checked by the library's config)."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    return values


def _band(text: str) -> tuple[float, float]:
    """``LO,HI`` as two numbers; their order is checked by ``jointnas.designs.edf.EDFConfig``."""
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected LO,HI in MFLOPs (e.g. 0.5,2), got {text!r}"
        ) from None


def add_parser(sub) -> None:
    """Register ``edf`` and ``scale`` on the main parser's ``sub``."""
    edf = sub.add_parser(
        "edf", help="compare design spaces by the error EDFs of models sampled in a FLOPs band"
    )
    edf.add_argument(
        "--space",
        type=_names,
        required=True,
        metavar="NAME,NAME",
        help="registered spaces to compare, comma-separated (`jointnas spaces` lists them)",
    )
    edf.add_argument(
        "--mflops-band",
        type=_band,
        required=True,
        metavar="LO,HI",
        help="every sampled model has LO <= MFLOPs <= HI (multiply-adds, analytic)",
    )
    edf.add_argument("--n", type=int, default=100, help="models per space (default: %(default)s)")
    edf.add_argument(
        "--epochs", type=positive_int, default=2, help="training epochs (default: %(default)s)"
    )
    add_dataset(edf)
    add_storage(edf)
    edf.add_argument(
        "--study", default="jointnas", help="run name; studies NAME.edf.SPACE (default: jointnas)"
    )
    edf.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    edf.add_argument("--out", default="edf-out", help="report directory (default: %(default)s)")
    edf.add_argument(
        "--resamples",
        type=positive_int,
        default=1000,
        help="bootstrap resamples of each KS interval (default: %(default)s)",
    )
    edf.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default: auto)")
    edf.add_argument("--batch-size", type=positive_int, default=128)
    edf.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    edf.add_argument("--no-progress", action="store_true", help="hide progress bars")

    scl = sub.add_parser(
        "scale", help="EfficientNet compound scaling of a base network vs one-dimension scaling"
    )
    scl.add_argument(
        "--base", required=True, metavar="ARCH.json", help="base network (best.json / export)"
    )
    scl.add_argument(
        "--phi",
        type=_floats,
        default=(1.0, 2.0, 3.0),
        metavar="P,P",
        help="compound coefficients to train (default: 1,2,3)",
    )
    scl.add_argument(
        "--coefficients",
        type=_floats,
        default=None,
        metavar="A,B,G",
        help="depth, width, resolution bases to use as given (skips the grid search)",
    )
    add_dataset(scl)
    add_storage(scl)
    scl.add_argument(
        "--study", default="scale", help="grid study NAME, comparison NAME.compare (default: scale)"
    )
    scl.add_argument(
        "--search-epochs",
        type=positive_int,
        default=1,
        help="epochs of each grid-search training at phi = 1 (default: %(default)s)",
    )
    scl.add_argument(
        "--epochs",
        type=positive_int,
        default=2,
        help="epochs of each compared model (default: %(default)s)",
    )
    scl.add_argument(
        "--seeds", type=positive_int, default=1, help="trainings per model (default: 1)"
    )
    scl.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    scl.add_argument("--out", default="jointnas-scale", help="report directory")
    scl.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default: auto)")
    scl.add_argument("--batch-size", type=positive_int, default=128)
    scl.add_argument("--no-progress", action="store_true", help="hide progress bars")
