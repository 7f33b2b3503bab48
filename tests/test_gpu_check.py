"""The GPU check script runs its every section on the CPU at a toy size (``--tiny``), so it is
known to work before a GPU machine is borrowed for it; without CUDA its real mode says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}


def test_tiny_gpu_check_runs_every_section_on_cpu(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--tiny", "--out", str(tmp_path)],
        env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    blob = json.loads((tmp_path / "gpu_check.json").read_text())
    assert set(blob["sections"]) == {"trainer", "loader", "workers", "search"}
    assert {s["status"] for s in blob["sections"].values()} == {"ok"}
    assert (tmp_path / "gpu_check.md").is_file()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA machine runs the real check")
def test_the_real_check_without_cuda_ends_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--out", str(tmp_path)],
        env=ENV, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "CUDA" in done.stderr


@pytest.mark.slow
def test_tiny_scale_sections_run_their_scripts_on_cpu(tmp_path: Path) -> None:
    sections = "scale-supernet,scale-equal-compute"
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--tiny", "--sections", sections,
         "--out", str(tmp_path)],
        env=ENV, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    blob = json.loads((tmp_path / "gpu_check.json").read_text())
    supernet, equal = blob["sections"]["scale-supernet"], blob["sections"]["scale-equal-compute"]
    assert supernet["rows"][0]["proxy"].startswith("stand-alone: one seed vs another")
    assert "meaningful (ceiling >= 0.7)" in supernet["settings"]
    assert {r["method"] for r in equal["rows"]} == {"pipeline", "random-sh"}
    assert (tmp_path / "scale_equal_compute" / "gpu_equal_compute.png").is_file()


def test_an_unknown_section_ends_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--tiny", "--sections", "nope",
         "--out", str(tmp_path)],
        env=ENV, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["gpu_check: unknown section(s) ['nope']"]
