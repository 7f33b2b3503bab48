"""The GPU check's report: ``gpu_check.json`` (everything) and ``gpu_check.md`` (a table per
section, its checks and settings), written where ``gpu_check.py --out`` says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import _common


def write(out: Path, blob: dict[str, Any]) -> None:
    """``gpu_check.json`` and ``gpu_check.md`` (a table per section, its checks) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(blob, indent=2, default=str) + "\n")
    m = blob["machine"]
    lines = [
        "# gpu_check" + (" (tiny, CPU)" if blob["tiny"] else ""),
        "",
        f"`{blob['command']}`",
        "",
        f"Device: {blob['device']}; CPU {m['cpu_model']} ({m['cpus_usable']} usable cores); "
        f"torch {m['torch']}; commit {m['git_commit']}; {m['date_utc']}; seed {blob['seed']}; "
        f"{blob['seconds']:.0f} s in all.",
    ]
    for name, sec in blob["sections"].items():
        lines += ["", f"## {name}: {sec['status']}", ""]
        if "error" in sec:
            lines += ["```", sec["error"].rstrip(), "```"]
            continue
        rows = [
            {k: v for k, v in r.items() if k not in ("runs", "output_tail")} for r in sec["rows"]
        ]
        lines += [_common.print_table(rows, list(rows[0])), ""]
        lines += [f"- {k}: {'ok' if v else 'FAILED'}" for k, v in sec["checks"].items()]
        lines.append("- settings: " + ", ".join(f"{k}={v}" for k, v in sec["settings"].items()))
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")
