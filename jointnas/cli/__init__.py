"""``jointnas`` command line: each command parses, calls one library function, prints.

Errors caused by input (bad options, datasets, storages, impossible limits) print one line
``jointnas: error: ...`` on stderr and exit with status 2; nothing stored is changed by them.
"""

import sys
from collections.abc import Sequence

from jointnas.cli.commands import (
    cmd_calibrate,
    cmd_dashboard,
    cmd_describe,
    cmd_edf,
    cmd_export,
    cmd_pareto,
    cmd_predictor,
    cmd_run,
    cmd_scale,
    cmd_search,
    cmd_spaces,
    cmd_worker,
)
from jointnas.cli.parser import build_parser
from jointnas.cli.supernet import cmd_supernet
from jointnas.errors import JointNASError
from jointnas.training.data import DatasetError

COMMANDS = {
    "export": cmd_export,
    "search": cmd_search,
    "pareto": cmd_pareto,
    "run": cmd_run,
    "worker": cmd_worker,
    "calibrate": cmd_calibrate,
    "predictor": cmd_predictor,
    "spaces": cmd_spaces,
    "describe": cmd_describe,
    "edf": cmd_edf,
    "scale": cmd_scale,
    "dashboard": cmd_dashboard,
    "supernet": cmd_supernet,
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
    except Exception as exc:  # Ctrl-C inside a storage write can surface as the write's error
        if not _interrupted(exc):
            raise
        return _report_interrupt()
    except KeyboardInterrupt:
        return _report_interrupt()


def _interrupted(exc: BaseException | None) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _report_interrupt() -> int:
    print("jointnas: interrupted; completed trials are kept in the storage", file=sys.stderr)
    return 130


__all__ = ["COMMANDS", "build_parser", "main"]
