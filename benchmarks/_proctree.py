"""Memory of a process tree, sampled while it runs, and the CPU model for result headers.

A streamed search forks DataLoader workers, so the memory a user sees is the tree's, not the
main process's. Summing RSS over the tree counts pages the forked workers share with the parent
(torch's libraries, the file list) once per process, so PSS (each shared page split among its
sharers, from ``/proc/<pid>/smaps_rollup``) is recorded beside it as the fair total. psutil is
used where installed; otherwise ``/proc`` is read directly (Linux), so the benchmark needs no
extra package.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

try:
    import psutil
except ImportError:  # the /proc fallback below
    psutil = None


def cpu_model() -> str:
    """The CPU's marketing name (``platform.processor()`` is empty on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _kb_fields(path: str, names: tuple[str, ...]) -> dict[str, int]:
    """``Name: <n> kB`` lines of a /proc file, in bytes (missing names are absent)."""
    out: dict[str, int] = {}
    try:
        with open(path) as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in names:
                    out[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children, grandchildren, ...)."""
    if psutil is not None:
        try:
            return [p.pid for p in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            return []
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def memory(pid: int) -> dict[str, int]:
    """Current RSS, its high-water mark (VmHWM) and PSS of one process, in bytes (0: gone)."""
    status = _kb_fields(f"/proc/{pid}/status", ("VmRSS", "VmHWM"))
    pss = _kb_fields(f"/proc/{pid}/smaps_rollup", ("Pss",))
    rss = status.get("VmRSS", 0)
    if not status and psutil is not None:  # not Linux: RSS only
        try:
            rss = psutil.Process(pid).memory_info().rss
        except psutil.Error:
            rss = 0
    return {"rss": rss, "hwm": status.get("VmHWM", rss), "pss": pss.get("Pss", rss)}


@dataclass
class TreePeak:
    """Peaks over every sample of one process tree."""

    main_rss: int = 0
    main_hwm: int = 0
    tree_rss: int = 0
    tree_pss: int = 0
    max_children: int = 0
    samples: int = 0
    #: each descendant's own high-water mark: their sum plus ``main_hwm`` bounds the tree's
    #: true peak from above (0.2 s samples can miss a short spike; VmHWM cannot)
    child_hwm: dict[int, int] = field(default_factory=dict)

    @property
    def tree_hwm_bound(self) -> int:
        return self.main_hwm + sum(self.child_hwm.values())

    def add(self, pid: int) -> None:
        """Take one sample of ``pid`` and its descendants."""
        main = memory(pid)
        kids = descendants(pid)
        per_kid = [memory(k) for k in kids]
        self.main_rss = max(self.main_rss, main["rss"])
        self.main_hwm = max(self.main_hwm, main["hwm"])
        self.tree_rss = max(self.tree_rss, main["rss"] + sum(m["rss"] for m in per_kid))
        self.tree_pss = max(self.tree_pss, main["pss"] + sum(m["pss"] for m in per_kid))
        self.max_children = max(self.max_children, len(kids))
        for k, m in zip(kids, per_kid, strict=True):
            self.child_hwm[k] = max(self.child_hwm.get(k, 0), m["hwm"])
        self.samples += 1


def run_sampled(
    cmd: list[str], *, log: Path, env: dict[str, str], interval: float, timeout: float
) -> tuple[int, float, TreePeak]:
    """Run ``cmd`` (output to ``log``), sampling its tree every ``interval`` s; return its
    exit status (-9 when it outran ``timeout`` and was killed), wall seconds and peaks."""
    peak = TreePeak()
    with log.open("w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            while proc.poll() is None:
                peak.add(proc.pid)
                if time.perf_counter() - t0 > timeout:
                    for kid in descendants(proc.pid):
                        _kill(kid)
                    proc.kill()
                    break
                time.sleep(interval)
            rc = proc.wait()
        except BaseException:
            proc.kill()
            raise
        wall = time.perf_counter() - t0
    return rc, wall, peak


def _kill(pid: int) -> None:
    with contextlib.suppress(OSError):  # already gone
        os.kill(pid, 9)
