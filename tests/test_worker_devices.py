"""``run --workers N`` without real processes: the device each local worker gets
(``workers.worker_devices``), the commands ``launch`` starts, and a child that dies while the
others still run (its trial is failed at once). ``subprocess.Popen`` and the GPU count are
faked, so this runs on CPU-only machines."""

from __future__ import annotations

import itertools
import socket
import sys
import types

import optuna
import pytest

from jointnas.errors import ConfigError
from jointnas.runs import workers
from jointnas.runs.workers import worker_devices
from jointnas.storage.backends import open_storage


@pytest.mark.parametrize(
    ("device", "gpus", "expected"),
    [
        ("auto", 0, ["auto"] * 3),  # CPU-only: as before, each worker resolves auto itself
        ("auto", 1, ["auto"] * 3),
        ("auto", 2, ["cuda:0", "cuda:1", "cuda:0"]),
        ("auto", 4, ["cuda:0", "cuda:1", "cuda:2"]),
        ("cuda", 2, ["cuda:0", "cuda:1", "cuda:0"]),
        ("cuda", 1, ["cuda"] * 3),
        ("cpu", 4, ["cpu"] * 3),  # one explicit device: every worker's
        ("cuda:1", 4, ["cuda:1"] * 3),
    ],
)
def test_one_device_is_spread_over_the_gpus_only_when_it_names_none(device, gpus, expected):
    assert worker_devices(device, 3, devices=None, gpu_count=gpus) == expected


@pytest.mark.parametrize(
    ("devices", "workers_", "expected"),
    [
        (("cuda:0", "cuda:1"), 3, ["cuda:0", "cuda:1", "cuda:0"]),  # shorter: round-robin
        (("cuda:0", "cuda:1", "cuda:2"), 2, ["cuda:0", "cuda:1"]),  # longer: the first ones
        (("cuda:1",), 2, ["cuda:1", "cuda:1"]),
        ((" cuda:3", "cpu"), 3, ["cuda:3", "cpu", "cuda:3"]),  # planned, not probed: no GPU here
        (["cuda:0", "cuda:0", "cuda:1"], 3, ["cuda:0", "cuda:0", "cuda:1"]),  # 2 on one GPU
    ],
)
def test_a_device_list_is_dealt_out_round_robin(devices, workers_, expected):
    for device, gpus in (("auto", 0), ("auto", 4), ("cpu", 0)):  # the list wins
        assert worker_devices(device, workers_, devices=devices, gpu_count=gpus) == expected


@pytest.mark.parametrize(
    ("device", "devices", "message"),
    [
        ("auto", ("cuda:0", "gpu1"), "--devices: 'gpu1' is not a device"),
        ("auto", ("cuda:x",), "--devices: 'cuda:x' is not a device"),
        ("auto", ("cuda:-1",), "--devices: 'cuda:-1' is not a device"),
        ("auto", ("",), "--devices: '' is not a device"),
        ("auto", ("auto", "cuda:1"), "'auto' is not a device"),
        ("auto", (), "--devices needs a list"),
        ("auto", "cuda:0,cuda:1", "--devices needs a list"),
        ("gpu", None, "--device: 'gpu' is not a device"),
    ],
)
def test_a_bad_device_is_a_one_line_config_error(device, devices, message):
    with pytest.raises(ConfigError) as info:
        worker_devices(device, 2, devices=devices, gpu_count=2)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_no_workers_is_a_config_error():
    with pytest.raises(ConfigError, match="--workers must be >= 1"):
        worker_devices("auto", 0, devices=None, gpu_count=0)


class FakeWorker:
    """A ``subprocess.Popen`` stand-in: exits with ``code`` after ``polls`` polls."""

    pids = itertools.count(4_000_000)  # above any real pid: no real process is named

    def __init__(self, cmd, *, code: int = 0, polls: int = 0, on_poll=None) -> None:
        self.cmd, self.pid, self._code, self._left = cmd, next(self.pids), code, polls
        self.returncode = None
        self._on_poll = on_poll

    def poll(self):
        if self._on_poll is not None:
            self._on_poll(self)
        if self._left <= 0:
            self.returncode = self._code
        self._left -= 1
        return self.returncode

    def wait(self):
        self._left = 0
        return self.poll()


@pytest.fixture
def study_config(tmp_path, monkeypatch):
    """A config of a journal study with no trials; ``launch`` sleeps no time between polls."""
    monkeypatch.setattr(workers, "time", types.SimpleNamespace(sleep=lambda s: None))
    path = str(tmp_path / "study.log")
    optuna.create_study(storage=open_storage(path), study_name="s", direction="maximize")

    def config(**kw):
        return types.SimpleNamespace(storage=path, study_name="s", device="auto", trials=4, **kw)

    return config


def _launch(monkeypatch, config, n: int, gpus: int, **worker_kw) -> list[FakeWorker]:
    started: list[FakeWorker] = []

    def popen(cmd, **kwargs):
        started.append(FakeWorker(cmd, **worker_kw))
        return started[-1]

    monkeypatch.setattr(workers.subprocess, "Popen", popen)
    monkeypatch.setattr(workers, "visible_gpu_count", lambda: gpus)
    assert workers.launch(config, workers=n, done=lambda: 0, progress=False) == [0] * n
    return started


def _device(cmd: list[str]) -> str:
    return cmd[cmd.index("--device") + 1]


@pytest.mark.parametrize(
    ("gpus", "devices", "expected"),
    [
        (0, None, ["auto", "auto", "auto"]),
        (2, None, ["cuda:0", "cuda:1", "cuda:0"]),
        (4, ("cuda:3", "cuda:1"), ["cuda:3", "cuda:1", "cuda:3"]),
    ],
)
def test_launch_gives_each_worker_its_device(monkeypatch, study_config, gpus, devices, expected):
    config = study_config() if devices is None else study_config(devices=devices)
    started = _launch(monkeypatch, config, 3, gpus)
    assert [_device(w.cmd) for w in started] == expected
    for w in started:
        assert w.cmd[:4] == [sys.executable, "-m", "jointnas.cli", "worker"]
        assert w.cmd.count("--device") == 1 and "--threads" in w.cmd
        assert w.cmd[w.cmd.index("--study") + 1] == "s"


def test_launch_fails_a_dead_childs_trial_while_the_others_still_run(monkeypatch, study_config):
    config = study_config()
    study = optuna.load_study(study_name="s", storage=open_storage(config.storage))
    started: list[FakeWorker] = []
    seen = []

    def look(w):  # what the survivors see while they still run
        seen.append([t.state for t in study.get_trials()])

    def popen(cmd, **kwargs):
        if len(started) < 2:
            started.append(FakeWorker(cmd, code=0, polls=3, on_poll=look))
            return started[-1]
        started.append(FakeWorker(cmd, code=-9))  # the last one is killed mid-trial at once
        study.enqueue_trial({"x": 0.5})
        trial = study.ask()
        trial.set_user_attr("worker", f"{socket.gethostname()}:{started[-1].pid}")
        trial.suggest_float("x", 0, 1)
        trial.set_user_attr("stage", "coarse")
        return started[-1]

    monkeypatch.setattr(workers.subprocess, "Popen", popen)
    monkeypatch.setattr(workers, "visible_gpu_count", lambda: 0)
    assert workers.launch(config, workers=3, done=lambda: 0, progress=False) == [0, 0, -9]
    # before the survivors exited, the trial was failed and its candidate enqueued again
    assert [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING] in seen[:-2]
    failed, retry = study.get_trials()
    assert "was killed by SIGKILL" in failed.user_attrs["worker_died"]
    assert retry.params == failed.params and retry.system_attrs["failed_trial"] == failed.number
