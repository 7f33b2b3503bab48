"""Helpers shared by several test files (fixtures live in ``conftest.py``).

Test files import this as ``from helpers import ...``: pytest puts ``tests/`` on ``sys.path``
(rootdir-relative imports, no ``tests/__init__.py``), as it does for ``conftest``. Heavy imports
(fvcore, the pipeline) happen inside the helpers that need them, so a file that only wants
``run_cli`` does not pay for them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from jointnas.spaces.base import Space
from jointnas.spaces.nets.cost import cost, cost_batch
from jointnas.spaces.nets.model import build_model
from jointnas.storage.backends import open_storage
from jointnas.testing import fvcore_cost

# --------------------------------------------------------------------------- the CLI


def run_cli(*args: str, cwd) -> subprocess.CompletedProcess:
    """``jointnas ARGS`` in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "jointnas.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


# --------------------------------------------------------------------------- analytic cost

#: the task of the small (digits-sized) and the ImageNet layouts
SMALL = {"num_classes": 10, "in_channels": 1}
IMAGENET = {"num_classes": 1000, "in_channels": 3}


def assert_batch_equals_scalar(
    space: Space, samples: Sequence[Mapping[str, Any]], task: Mapping[str, int]
) -> None:
    """``cost_batch`` of the encoded ``samples`` is int64, one value per row, equal to the
    scalar cost of each decoded sample, and varies (so the samples really differ)."""
    batch = cost_batch(space, space.encode(samples), **task)
    scalar = [space.cost(space.decode(p).arch, **task) for p in samples]
    for field in ("flops", "params", "acts"):
        values = getattr(batch, field)
        assert isinstance(values, np.ndarray) and values.dtype == np.int64
        assert values.shape == (len(samples),)
        np.testing.assert_array_equal(values, [getattr(c, field) for c in scalar])
    assert len(set(batch.flops.tolist())) > len(samples) // 2


def assert_matches_fvcore(arch, task: dict[str, int]) -> None:
    analytic = cost(arch, **task)
    model = build_model(arch, task["num_classes"], task["in_channels"]).eval()
    x = torch.zeros(1, task["in_channels"], arch.resolution, arch.resolution)
    assert analytic == fvcore_cost(model, x), arch


# --------------------------------------------------------------------------- the pipeline


def tiny_run(tmp_path, digits, name: str, max_mflops: float) -> optuna.Study:
    """The whole pipeline (coarse -> predictor -> fine -> final) on a few hundred digits."""
    from jointnas.runs.pipeline import RunConfig, run
    from jointnas.spaces import get_space

    config = RunConfig(
        storage=f"sqlite:///{tmp_path}/{name}.db",
        space=name,
        dataset="digits",
        max_mflops=max_mflops,
        trials=4,
        epochs=1,
        fine_generations=1,
        fine_population=6,
        fine_children=32,
        final_top=1,
        final_epochs=1,
        out=str(tmp_path / name),
    )
    study = run(config, data=digits.subset(train=192, val=96), progress=False)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 4 and all(0 < t.user_attrs["mflops"] <= max_mflops for t in done)
    assert study.user_attrs["jointnas:space"] == name
    best = json.loads((tmp_path / name / "best.json").read_text())
    assert best["space"]["name"] == name and 0 <= best["val_acc"] <= 1
    space = get_space(name)
    assert space.cost(space.decode(best["params"]).arch, **SMALL).mflops <= max_mflops
    return study


# --------------------------------------------------------------------------- worker processes

RUNNING, COMPLETE, FAIL, WAITING = (
    optuna.trial.TrialState.RUNNING,
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.FAIL,
    optuna.trial.TrialState.WAITING,
)
#: options of every ``jointnas run`` that ``start_run`` starts
COMMON = ["--dataset", "digits", "--max-mflops", "0.5", "--heartbeat", "1", "--no-progress"]


def start_run(tmp_path: Path, storage: str, study: str, *args: str) -> subprocess.Popen:
    """``jointnas run`` on ``storage``/``study`` with ``COMMON`` and ``args``, in the background;
    its output goes to ``tmp_path/<study>.out``."""
    log = (tmp_path / f"{study}.out").open("a")
    cmd = [sys.executable, "-m", "jointnas.cli", "run", "--storage", storage, "--study", study]
    # one OpenMP thread: on a busy 2-core machine, 2-thread trainings beside other processes
    # busy-wait and ran 50x slower (a worker sets its own share with --threads)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [*cmd, *COMMON, *args],
        cwd=tmp_path,
        stdout=log,
        stderr=log,
        env=env,
        # Ctrl-C must reach the child even when this test runs in a background job (where the
        # shell ignores SIGINT and children inherit that)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def load_trials(storage: str, study: str) -> list[optuna.trial.FrozenTrial]:
    """The study's trials as another process sees them; none when it does not exist yet."""
    try:  # a fresh storage object each time: what another process sees
        return optuna.load_study(study_name=study, storage=open_storage(storage)).trials
    except KeyError:
        return []


def wait_for(
    storage: str,
    study: str,
    proc: subprocess.Popen,
    found: Callable[[list[optuna.trial.FrozenTrial]], Any],
    timeout: float = 240,
):
    """Poll the study until ``found(trials)`` is truthy; return it and the trials. Fails when
    ``proc`` ends first, or after ``timeout`` seconds (a guard against a hang, not a check of
    speed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        trials = load_trials(storage, study)
        hit = found(trials)
        if hit:
            return hit, trials
        assert proc.poll() is None, "the run ended before the awaited moment"
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the run")


def trained(trials, stage: str = "coarse") -> list[optuna.trial.FrozenTrial]:
    """The completed trials of ``stage`` that were really trained."""
    return [
        t
        for t in trials
        if t.state == COMPLETE
        and t.user_attrs.get("stage") == stage
        and "train_seconds" in t.user_attrs
    ]
