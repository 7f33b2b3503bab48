"""Shared helpers for the benchmark scripts: import path, machine facts, CSV/JSON output.

Scripts run as ``python benchmarks/<name>.py`` from a checkout, installed or not, so this module
puts the repository root on ``sys.path`` before the scripts import ``jointnas``.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_facts() -> dict[str, Any]:
    """What a reader needs to judge the numbers: platform, cores, versions, threads, load."""
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "gpu": torch.cuda.is_available(),
        "torch": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "optuna": _version("optuna"),
        "fvcore": _version("fvcore"),
        "numpy": _version("numpy"),
        "git_commit": _git_commit(),
        "loadavg_1m_start": round(os.getloadavg()[0], 2),
    }


def write_results(
    stem: str,
    rows: Sequence[Mapping[str, Any]],
    facts: Mapping[str, Any],
    *,
    extra: Mapping[str, Any] | None = None,
    folder: Path | None = None,
) -> tuple[Path, Path]:
    """Write ``<folder>/<stem>.csv`` (machine facts as ``# key: value`` header lines) and
    ``<folder>/<stem>.json`` (facts, settings and rows), ``folder`` defaulting to
    ``benchmarks/results``; return both paths."""
    folder = RESULTS if folder is None else folder
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = folder / f"{stem}.csv", folder / f"{stem}.json"
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    with csv_path.open("w", newline="") as f:
        for key, value in facts.items():
            f.write(f"# {key}: {value}\n")
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    blob = {"machine": dict(facts), **dict(extra or {}), "rows": list(rows)}
    json_path.write_text(json.dumps(blob, indent=2, default=str) + "\n")
    return csv_path, json_path


def finish(
    stem: str,
    rows: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any],
    folder: Path | None = None,
) -> None:
    """Print ``rows`` as a table and write them with the machine facts and ``settings``."""
    table = print_table(rows, list(rows[0]))
    extra = {"settings": dict(settings), "table_markdown": table}
    write_results(stem, rows, machine_facts(), extra=extra, folder=folder)


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A plain fixed-width table (also valid Markdown), printed and returned."""
    cells = [[_fmt(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) + " |" for r in cells
    ]
    text = "\n".join(lines)
    print(text)
    return text


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value == 0 or 0.01 <= abs(value) < 1e5:
            return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return f"{value:.3g}"
    return str(value)
