"""The scale checks of issue 30 that a 2-core CPU cannot afford, as sections of ``gpu_check.py``.

* ``scale-supernet``: the one-shot supernet's ranking (``bench_supernet.py --tau-only``) with
  10,000 validation images (Fashion-MNIST 40,000, a quarter held out) and stand-alone subnets
  trained long enough that one seed ranks like another; the tau of a supernet means something
  only when that seed-vs-seed ceiling is at least 0.7 (the CPU run at 2 epochs and 2,000
  validation images measured 0.26).
* ``scale-equal-compute``: the equal-compute comparison (``bench_equal_compute.py``) on more
  images and with several searches sharing the GPU (``--jobs``), beside the CPU table.

Each runs its script as a subprocess under the section's time (a killed script keeps what it
stored: the per-search JSON files and the stand-alone cache are under ``--out``, so a second
call with that folder copied back resumes). ``gpu_check.sh --sections scale-supernet`` runs one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CEILING = 0.7  # seed-vs-seed tau a ranking proxy needs before its own tau means anything


@dataclass(frozen=True)
class ScaleSizes:
    """Arguments of the two scripts: full on a GPU, tiny on a CPU (the same code either way)."""

    supernet_args: tuple[str, ...]
    equal_args: tuple[str, ...]
    timeout_s: float


FULL = ScaleSizes(
    supernet_args=("--dataset", "fashion-mnist:40000", "--paths", "30", "--repeated", "30",
                   "--seeds", "2", "--sa-epochs", "8", "--sn-epochs", "30", "--sn-batch", "128",
                   "--score-images", "1000"),
    equal_args=("--train-images", "50000", "--epochs", "10", "--full-trainings", "10",
                "--seeds", "1", "--jobs", "4"),
    timeout_s=540,
)  # fmt: skip
TINY = ScaleSizes(
    supernet_args=("--dataset", "fashion-mnist:400", "--paths", "4", "--repeated", "4",
                   "--seeds", "2", "--sa-epochs", "1", "--sn-epochs", "1", "--score-images",
                   "50"),
    equal_args=("--train-images", "200", "--epochs", "2", "--full-trainings", "6",
                "--coarse-epochs", "1", "--final-top", "1", "--retrain-seeds", "1",
                "--seeds", "1", "--jobs", "1", "--methods", "pipeline,random-sh"),
    timeout_s=300,
)  # fmt: skip


def _script(name: str, args: list[str], log: Path, timeout: float) -> tuple[int, float, list]:
    """``python benchmarks/NAME ARGS``: exit status (124: timed out), wall s, last lines."""
    t0 = time.perf_counter()
    with log.open("w") as out:
        try:
            rc = subprocess.run(
                [sys.executable, str(HERE / name), *args],
                stdout=out, stderr=subprocess.STDOUT, timeout=timeout, cwd=HERE.parent,
            ).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            rc = 124
    return rc, time.perf_counter() - t0, log.read_text().splitlines()[-12:]


def section_supernet(sizes: ScaleSizes, device: str, out: Path, deadline: float) -> dict[str, Any]:
    """Supernet ranking tau against stand-alone accuracy, with its seed-vs-seed ceiling."""
    folder = out / "scale_supernet"
    folder.mkdir(parents=True, exist_ok=True)
    args = [*sizes.supernet_args, "--device", device, "--tau-only", "--state", str(folder)]
    args += ["--results", str(folder), "--stem", "gpu_supernet"]
    timeout = min(sizes.timeout_s, max(1.0, deadline - time.perf_counter()))
    rc, wall, tail = _script("bench_supernet.py", args, folder / "run.out", timeout)
    written = folder / "gpu_supernet_tau.json"
    rows = json.loads(written.read_text())["rows"] if written.is_file() else []
    ceiling = rows[0]["tau_seed_mean"] if rows else None
    settings = dict(zip(sizes.supernet_args[::2], sizes.supernet_args[1::2], strict=True))
    return {
        "rows": rows or [{"exit": rc, "wall_s": round(wall, 1)}],
        "checks": {"exited 0 with a tau table": rc == 0 and bool(rows)},
        "settings": {
            **settings,
            "wall_s": round(wall, 1),
            "ceiling": ceiling,
            "meaningful (ceiling >= 0.7)": ceiling is not None and ceiling >= CEILING,
        },
        **({"output_tail": tail} if rc else {}),
    }


def section_equal_compute(
    sizes: ScaleSizes, device: str, out: Path, deadline: float
) -> dict[str, Any]:
    """The equal-compute comparison at a larger scale, several searches sharing the device."""
    from _equal_compute_report import rows as table
    from bench_equal_compute import METHODS

    folder = out / "scale_equal_compute"
    folder.mkdir(parents=True, exist_ok=True)
    args = [*sizes.equal_args, "--device", device, "--out", str(folder / "runs")]
    args += ["--state", str(folder / "state"), "--results", str(folder)]
    args += ["--stem", "gpu_equal_compute"]
    timeout = min(sizes.timeout_s, max(1.0, deadline - time.perf_counter()))
    rc, wall, tail = _script("bench_equal_compute.py", args, folder / "run.out", timeout)
    runs = folder / "runs"
    jobs = {
        m: [json.loads(p.read_text()) for p in sorted(runs.glob(f"{m}_s*.json"))] for m in METHODS
    }
    rows = table({m: j for m, j in jobs.items() if j})
    settings = dict(zip(sizes.equal_args[::2], sizes.equal_args[1::2], strict=True))
    return {
        "rows": rows or [{"exit": rc, "wall_s": round(wall, 1)}],
        "checks": {"exited 0 with every search scored": rc == 0 and bool(rows)},
        "settings": {**settings, "wall_s": round(wall, 1), "results": str(folder)},
        **({"output_tail": tail} if rc else {}),
    }


SECTIONS = {"scale-supernet": section_supernet, "scale-equal-compute": section_equal_compute}
