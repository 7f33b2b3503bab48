"""Many training workers on one coarse-stage study: ``jointnas worker`` and ``run --workers N``.

A run stores the settings every worker must share (space, data, limits, budget, seed, ...) in
the study (user attr ``jointnas:run``), so a worker needs only the storage URL and the study
name: on another machine, ``jointnas worker --storage postgresql+psycopg://... --study NAME``
joins and trains candidates until the study holds its budget of coarse trials. The budget is
counted in the storage (``coarse.StopAtBudget``), trials of killed workers are failed by the
heartbeat (or at once by ``launch``, for its own children: ``supervise.fail_worker_trials``) and
retrained by the survivors, and two workers never train the same candidate
(``objective.Objective._refuse_twins``). On a machine with several GPUs, ``launch`` spreads its
workers over them (``worker_devices``).

SQLite is refused for several processes: it locks the whole database file on every write, so
workers queue behind each other's writes and hit "database is locked" under load. Use
PostgreSQL (one server, many machines) or a journal file (one machine or a shared file system).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import optuna

from jointnas.errors import ConfigError
from jointnas.runs.coarse import SHARED, coarse_loop, coarse_objective, coarse_sampler
from jointnas.runs.config import RunConfig
from jointnas.runs.context import DATA_FIELDS, RunContext, largest_resolution
from jointnas.storage import keys
from jointnas.storage.backends import load_study
from jointnas.storage.devices import visible_gpu_count, worker_devices
from jointnas.storage.layout import check_layout, study_space
from jointnas.storage.supervise import drop_unneeded_retries, fail_worker_trials

RUN_ATTR = keys.RUN


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
    data = study.user_attrs.get(keys.DATA_SETTINGS, {})
    return RunConfig(
        **shared,
        **{k: data[k] for k in DATA_FIELDS if k in data},
        storage=storage,
        study_name=study_name,
        device=device,
        stop_after="coarse",
    )


def work(
    storage: str, study_name: str, *, device: str = "auto", progress: bool = True
) -> optuna.Study:
    """What ``jointnas worker`` runs: join the coarse study the run's starter stamped, and
    train candidates until it holds its budget. Only the coarse loop: the limits, the stamp
    and the reward were checked once by ``pipeline.run``."""
    config = worker_config(storage, study_name, device=device)
    space = config.build_space()
    ctx = RunContext.open(config, image_size=largest_resolution(space))
    objective = coarse_objective(config, ctx, space)
    study = optuna.load_study(
        study_name=study_name,
        storage=ctx.storage,
        sampler=coarse_sampler(config, objective),
        pruner=optuna.pruners.NopPruner(),
    )
    return coarse_loop(study, objective, config.trials, progress=progress)


def _exit_reason(worker: str, code: int) -> str:
    if code < 0:
        try:
            return f"worker {worker} was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"worker {worker} was killed by signal {-code}"
    return f"worker {worker} exited with code {code}"


def launch(
    config: RunConfig,
    *,
    workers: int,
    done: Callable[[], int],
    progress: bool = True,
    study: optuna.Study | None = None,
) -> list[int]:
    """Run ``workers`` local ``jointnas worker`` processes on ``config``'s study until they
    exit; each gets an equal share of the CPU threads and its own device (``worker_devices``
    of ``config.device``, ``config.devices`` and the GPUs here). Returns their exit codes.

    A worker that dies (killed, crashed) has its RUNNING trials failed at once and their
    candidates retried by the others while the budget (``config.trials``) needs them
    (``supervise.fail_worker_trials``); once all have exited, no trial of theirs is left
    RUNNING, and retries the budget no longer needs are dropped. ``study``: the Optuna study
    to do that on (default: opened from ``config.storage``).

    Ctrl-C is passed on to the workers (their running trials end as FAIL and are retried by
    the next run); the parent waits for them and re-raises it.
    """
    devices = getattr(config, "devices", None)
    gpus = visible_gpu_count() if devices is None and config.device in ("auto", "cuda") else 0
    per_worker = worker_devices(config.device, workers, devices=devices, gpu_count=gpus)
    threads = max(1, (os.cpu_count() or 1) // workers)
    cmd = [sys.executable, "-m", "jointnas.cli", "worker", "--storage", config.storage]
    cmd += ["--study", config.study_name, "--threads", str(threads), "--no-progress"]
    if study is None:
        study = load_study(config.storage, config.study_name)
    procs = [subprocess.Popen([*cmd, "--device", d]) for d in per_worker]
    host, handled, warned = socket.gethostname(), set(), set()

    def bury(p: subprocess.Popen) -> None:
        """Fail the trials a dead child left RUNNING (once per child)."""
        if p.pid in handled:
            return
        worker = f"{host}:{p.pid}"
        fail_worker_trials(
            study, worker, reason=_exit_reason(worker, p.returncode), budget=config.trials
        )
        handled.add(p.pid)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.trials, desc=f"coarse search ({workers} workers)")
    try:
        while [p.poll() for p in procs].count(None):  # polls each (any() would stop early)
            for p in procs:
                if p.returncode not in (None, 0) and p.pid not in handled:
                    try:
                        bury(p)  # now, not a heartbeat grace period later
                    except Exception as exc:  # storage hiccup: the workers go on; so do we
                        if p.pid not in warned:  # (and the sweep below tries again)
                            warned.add(p.pid)
                            print(f"jointnas: cannot fail dead worker {p.pid}'s trials yet: {exc}")
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
    for p in procs:  # a trial is RUNNING only while its process lives: none of theirs is
        bury(p)
    drop_unneeded_retries(study, config.trials)
    return [p.returncode for p in procs]
