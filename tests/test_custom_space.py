"""The spine test: a space written outside the package plugs into every part of jointnas.

``PlainConvSpace`` below is a user's own space (distributions, decode, and the ``network`` of
its architecture type: builder and exact cost), defined in this file and registered once with
``jointnas.spaces.register``; it passes the space contract suite. Without any edit to the library
it runs ``run()`` end to end (coarse -> predictor -> fine -> final), ``jointnas worker``
processes join its coarse stage (they rebuild the space from the study, importing this module),
and ``export`` and ``search --predictor`` work on it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
from helpers import run_cli
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from torch import nn

import jointnas.spaces
from jointnas.runs.pipeline import RunConfig, run
from jointnas.spaces import Network
from jointnas.spaces.base import Candidate, Space
from jointnas.spaces.nets.blocks import ConvBNAct, Cost, out_size
from jointnas.spaces.nets.cost import cost
from jointnas.spaces.nets.model import build_model, seeded
from jointnas.spaces.recipe import Recipe
from jointnas.storage.layout import linked_study
from jointnas.testing import check_space

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ConvArch:
    resolution: int
    kernel: int
    width: int
    depth: int


def conv_cost(arch: ConvArch, *, num_classes: int, in_channels: int) -> Cost:
    """Exact cost of ``build_conv(arch)``, from the library's block twins."""
    size = arch.resolution
    total = ConvBNAct.cost(in_channels, arch.width, arch.kernel, 1, size)
    for _ in range(arch.depth):
        total = total + ConvBNAct.cost(arch.width, arch.width, arch.kernel, 2, size)
        size = out_size(size, 2)
    fc = arch.width * num_classes
    return total + Cost(size * size * arch.width + fc, fc + num_classes, num_classes)


def build_conv(
    arch: ConvArch, num_classes: int, in_channels: int, *, seed: int | None = None
) -> nn.Module:
    def make() -> nn.Module:
        layers = [ConvBNAct(in_channels, arch.width, arch.kernel, 1, act="relu")]
        layers += [
            ConvBNAct(arch.width, arch.width, arch.kernel, 2, act="relu") for _ in range(arch.depth)
        ]
        head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(arch.width, num_classes)]
        return nn.Sequential(*layers, *head)

    return seeded(seed, make)


class PlainConvSpace(Space):
    """A plain conv net: stem conv, ``depth`` stride-2 convs, pool, linear; and a recipe."""

    name = "plain-conv"
    recipe_names = ("optimizer", "lr")
    network = Network(ConvArch, build_conv, conv_cost)  # space.cost, jointnas.cost(arch), ...

    @property
    def distributions(self) -> Mapping[str, Any]:
        return {
            "resolution": IntDistribution(8, 16, step=4),
            "kernel": CategoricalDistribution((3, 5)),
            "width": IntDistribution(8, 32, step=8),
            "depth": IntDistribution(1, 3),
            "optimizer": CategoricalDistribution(("sgd", "adamw")),
            "lr": FloatDistribution(0.02, 0.3, log=True),
        }

    def decode(self, params: Mapping[str, Any]) -> Candidate:
        p = self.validate(params)
        arch = ConvArch(p["resolution"], p["kernel"], p["width"], p["depth"])
        return Candidate(arch, Recipe(optimizer=p["optimizer"], lr=p["lr"]))

    def to_params(self, candidate: Candidate) -> dict[str, Any]:
        a, r = candidate.arch, candidate.recipe
        return self.validate({**a.__dict__, "optimizer": r.optimizer, "lr": r.lr})


jointnas.spaces.register("plain-conv", PlainConvSpace, summary="a test's own conv-net space")


@pytest.fixture
def child_env(monkeypatch):
    """Worker and CLI subprocesses can import this module, as a user's package would be."""
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_the_space_keeps_the_contract(one_torch_thread):
    space = jointnas.spaces.get_space("plain-conv")
    assert space.key == "plain-conv" and space.vectorised_cost is False  # the scalar fallback
    assert jointnas.spaces.get_space("fbnetv3-small").vectorised_cost is True
    check_space(space, num_classes=10, in_channels=1, n=4)  # what a user runs on their space
    arch = ConvArch(resolution=12, kernel=5, width=16, depth=2)  # one registration serves all:
    task = {"num_classes": 10, "in_channels": 1}
    assert cost(arch, **task) == space.cost(arch, **task) == conv_cost(arch, **task)
    assert isinstance(build_model(arch, 10, 1, seed=0), nn.Sequential)


def test_a_space_from_outside_runs_the_whole_pipeline_with_workers(tmp_path, child_env):
    storage = str(tmp_path / "runs.log")
    config = RunConfig(
        storage=storage,
        study_name="own",
        space="plain-conv",
        dataset="digits",
        max_mflops=0.2,
        trials=6,
        epochs=1,
        workers=2,
        heartbeat=600,
        fine_generations=2,
        fine_population=8,
        fine_children=128,
        final_top=1,
        final_epochs=1,
        out=str(tmp_path / "out"),
    )
    study = run(config, progress=False)
    coarse = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(coarse) >= 6 and {t.user_attrs["stage"] for t in coarse} == {"coarse"}
    workers = {t.user_attrs["worker"] for t in coarse}
    assert len(workers) >= 2  # the `jointnas worker` processes trained candidates
    assert study.user_attrs["jointnas:space_record"]["module"] == __name__
    assert all(t.user_attrs["mflops"] <= 0.2 for t in coarse)
    assert optuna.load_study(study_name="own", storage=_journal(storage)).best_trial.number in {
        t.number for t in coarse
    }
    fine, final = linked_study(study, "fine"), linked_study(study, "final")
    assert fine.trials and all(t.user_attrs["predicted"] for t in fine.trials)
    assert [t.state.name for t in final.trials] == ["COMPLETE"]
    best = json.loads((tmp_path / "out" / "best.json").read_text())
    assert best["space"]["name"] == "plain-conv" and best["arch"]["width"] in (8, 16, 24, 32)

    from jointnas.tools.export import export_trial

    saved = export_trial(storage, "own.final", final.trials[0].number, tmp_path / "e")
    assert saved["weights"] == "saved by the run" and saved["stage"] == "final"
    trained = export_trial(storage, "own", coarse[0].number, tmp_path / "e2", epochs=1)
    assert trained["weights"].startswith("trained here") and 0 <= trained["val_acc"] <= 1

    # a fresh process rebuilds the space from the predictor artifact alone
    done = run_cli(
        "search",
        "--predictor",
        str(tmp_path / "out" / "predictor"),
        "--max-mflops",
        "0.1",
        "--top",
        "2",
        "--generations",
        "3",
        "--json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert rows and all(r["mflops"] <= 0.1 for r in rows) and "width" in rows[0]


def test_the_cli_lists_and_describes_a_plugin_space(tmp_path, child_env, monkeypatch):
    done = run_cli("describe", "--space", "plain-conv", "--json", cwd=tmp_path)
    assert done.returncode == 2 and "unknown space 'plain-conv'" in done.stderr  # not imported
    monkeypatch.setenv("JOINTNAS_SPACES", __name__)  # or a `jointnas.spaces` entry point
    done = run_cli("spaces", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    assert rows["plain-conv"]["parameters"] == 6 and rows["plain-conv"]["module"] == __name__
    done = run_cli(
        "describe", "--space", "plain-conv", "--preset", "largest", "--json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    space = PlainConvSpace()
    c = space.cost(space.decode(space.largest_params()).arch, num_classes=10, in_channels=1)
    assert (info["mflops"], info["params"], info["acts"]) == (c.flops / 1e6, c.params, c.acts)
    assert [r["name"] for r in info["rows"]] == [str(i) for i in range(7)]
    assert sum(r["params"] for r in info["rows"]) == c.params


def _journal(path: str) -> optuna.storages.JournalStorage:
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(path))
