"""Many training workers on one coarse-stage study: ``jointnas worker`` and ``run --workers N``.

A run stores the settings every worker must share (space, data, limits, budget, seed, ...) in
the study (user attr ``jointnas:run``), so a worker needs only the storage URL and the study
name: on another machine, ``jointnas worker --storage postgresql+psycopg://... --study NAME``
joins and trains candidates until the study holds its budget of coarse trials. The budget is
counted in the storage (``pipeline.StopAtBudget``), trials of killed workers are failed by the
heartbeat and retrained by the survivors, and two workers never train the same candidate
(``objective.Objective._refuse_twins``).

SQLite is refused for several processes: it locks the whole database file on every write, so
workers queue behind each other's writes and hit "database is locked" under load. Use
PostgreSQL (one server, many machines) or a journal file (one machine or a shared file system).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from jointnas import keys
from jointnas.config import RunConfig
from jointnas.errors import ConfigError
from jointnas.layout import check_layout, study_space
from jointnas.storage import load_study

RUN_ATTR = keys.RUN
#: RunConfig fields a worker takes from the study; it brings only storage, study and device
SHARED = (
    "space",
    "space_options",
    "dataset",
    "max_mflops",
    "max_params",
    "max_acts",
    "trials",
    "epochs",
    "schedule_epochs",
    "seed",
    "batch_size",
    "fix_arch",
    "coarse_sampler",
    "heartbeat",
)


def shared_settings(config: Any) -> dict[str, Any]:
    return {k: getattr(config, k) for k in SHARED}


def worker_config(storage: str, study_name: str, *, device: str = "auto") -> RunConfig:
    """The coarse-stage RunConfig of an existing study, read from the study itself."""
    study = load_study(storage, study_name)
    check_layout(study)
    shared = study.user_attrs.get(RUN_ATTR)
    if shared is None:
        raise ConfigError(
            f"study {study_name!r} was not made by `jointnas run` (no {RUN_ATTR!r} attr): "
            "start the run first, then add workers"
        )
    study_space(study)  # imports the module that registered the space (a user's package)
    unknown = sorted(set(shared) - set(SHARED))
    if unknown:
        raise ConfigError(
            f"study {study_name!r} was made by another jointnas version (settings {unknown}); "
            "start a new run with another --study name"
        )
    return RunConfig(
        **shared, storage=storage, study_name=study_name, device=device, stop_after="coarse"
    )


def launch(
    config: RunConfig, *, workers: int, done: Callable[[], int], progress: bool = True
) -> list[int]:
    """Run ``workers`` local ``jointnas worker`` processes on ``config``'s study until they
    exit; each gets an equal share of the CPU threads. Returns their exit codes.

    Ctrl-C is passed on to the workers (their running trials end as FAIL and are retried by
    the next run); the parent waits for them and re-raises it.
    """
    threads = max(1, (os.cpu_count() or 1) // workers)
    cmd = [sys.executable, "-m", "jointnas.cli", "worker", "--storage", config.storage]
    cmd += ["--study", config.study_name, "--device", config.device]
    cmd += ["--threads", str(threads), "--no-progress"]
    procs = [subprocess.Popen(cmd) for _ in range(workers)]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.trials, desc=f"coarse search ({workers} workers)")
    try:
        while any(p.poll() is None for p in procs):
            time.sleep(1.0)
            if bar is not None:
                bar.n = min(done(), config.trials)
                bar.refresh()
    except KeyboardInterrupt:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            p.wait()
        raise
    finally:
        if bar is not None:
            bar.close()
    return [p.returncode for p in procs]
