"""Fault benchmark: 4 workers, one SIGKILLed mid-training every N seconds, budget still met.

``jointnas run --workers 4 --stop-after coarse`` trains real candidates (digits, 2 epochs,
<= 0.5 MFLOPs); every ``--kill-every`` seconds this script SIGKILLs the worker process of a
RUNNING trial (mid-training: the hard case) and starts a replacement ``jointnas worker``, so
4 workers stay alive. Reported per storage (journal file, PostgreSQL): whether the budget was
reached, completed trials lost (a trial seen COMPLETE that is not COMPLETE at the end: must be
0), candidates trained twice (must be 0), killed trials retrained, and wall time against one
worker with no kills and four workers with no kills on the same budget.

    python benchmarks/bench_faults.py [--budget 40] [--kill-every 10]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common
import optuna

from jointnas.storage.backends import open_storage
from jointnas.storage.budget import counts_toward_budget
from jointnas.storage.keys import params_key

RUN = ["--dataset", "digits", "--max-mflops", "0.5", "--epochs", "2", "--heartbeat", "2"]


def _cli(*args: str, cwd: str, log: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "jointnas.cli", *args, "--no-progress"]
    out = (Path(cwd) / log).open("a")
    return subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)


def _last_line(path: Path) -> str:
    lines = [x for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []
    return lines[-1][:200] if lines else ""


def _trials(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=study, storage=open_storage(url)).trials
    except KeyError:
        return []


def one_case(url: str, study: str, *, workers: int, budget: int, kill_every: float | None, tmp):
    """Run one study to its budget; return the measurements."""
    t0 = time.perf_counter()
    parent = _cli(
        "run", "--storage", url, "--study", study, *RUN, "--trials", str(budget),
        "--workers", str(workers), "--stop-after", "coarse", cwd=tmp, log=f"{study}.out",
    )  # fmt: skip
    replacements: list[subprocess.Popen] = []
    seen_complete: dict[int, float] = {}
    killed: list[int] = []
    dead: set[int] = set()  # pids already killed: their stale trials stay RUNNING a while
    next_kill = time.perf_counter() + (kill_every or 0)
    while parent.poll() is None:
        time.sleep(0.5)
        trials = _trials(url, study)
        seen_complete.update({t.number: t.value for t in trials if t.state.name == "COMPLETE"})
        if kill_every is None or time.perf_counter() < next_kill:
            continue
        running = [t for t in trials if t.state.name == "RUNNING" and "worker" in t.user_attrs]
        pids = {t.number: int(t.user_attrs["worker"].split(":")[1]) for t in running}
        victims = [n for n, pid in pids.items() if pid != parent.pid and pid not in dead]
        if victims:
            dead.add(pids[victims[0]])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pids[victims[0]], signal.SIGKILL)
            killed.append(victims[0])
            join = ["worker", "--storage", url, "--study", study, "--threads", "1"]
            replacements.append(_cli(*join, cwd=tmp, log=f"{study}.out"))
            for p in replacements:
                p.poll()  # reap exited workers (a zombie would still accept signals)
            next_kill = time.perf_counter() + kill_every
    for p in replacements:
        p.wait()
    wall = time.perf_counter() - t0
    final = {t.number: t for t in _trials(url, study)}
    trained = [
        t for t in final.values() if t.state.name == "COMPLETE" and "train_seconds" in t.user_attrs
    ]
    keys = collections.Counter(params_key(t.params) for t in trained)
    retried = {t.system_attrs.get("failed_trial") for t in trained} & set(killed)
    return {
        "workers": workers,
        "kill_every_s": kill_every or "-",
        "budget": budget,
        "budget_reached": sum(counts_toward_budget(t) for t in final.values()) >= budget,
        "trained": len(trained),
        "killed": len(killed),
        "killed_retrained": len(retried),
        "completed_lost": sum(
            final[n].state.name != "COMPLETE" or final[n].value != v
            for n, v in seen_complete.items()
        ),
        "trained_twice": sum(n - 1 for n in keys.values()),
        "exit_code": parent.returncode,
        "last_output": _last_line(Path(tmp) / f"{study}.out"),
        "wall_s": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=40)
    parser.add_argument("--kill-every", type=float, default=10.0)
    parser.add_argument("--backends", default="journal,postgresql")
    parser.add_argument("--stem", default="bench_faults")
    args = parser.parse_args()
    rows = []
    for name in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
            if name == "journal":
                url = str(Path(tmp) / "faults.log")
            else:
                from jointnas.testing.postgres import postgres_server

                url = stack.enter_context(postgres_server("faults"))
            cases = [(1, None), (4, None), (4, args.kill_every)]
            for i, (workers, kill) in enumerate(cases):
                row = one_case(
                    url, f"case{i}", workers=workers, budget=args.budget, kill_every=kill, tmp=tmp
                )
                rows.append({"storage": name, **row})
                print(rows[-1], flush=True)
    base = {r["storage"]: r["wall_s"] for r in rows if r["workers"] == 1}
    for r in rows:
        r["wall_vs_1_worker"] = round(r["wall_s"] / base[r["storage"]], 2)
    _common.finish(args.stem, rows, vars(args))


if __name__ == "__main__":
    main()
