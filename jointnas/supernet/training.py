"""Train a supernet (SPOS uniform or GreedyNAS paths) through the spine's trainer, and save it.

The loop is ``jointnas.training.trainer.train``: the path schedule is a ``StepHook``, so resumable
checkpoints, the LR schedule, AMP and channels_last are the trainer's. BatchNorm is not
recalibrated at the trainer's evaluations (statistics of one path mean nothing for another);
every subnet evaluation recalibrates its own (``jointnas.evaluators.supernet``).

GreedyNAS scores paths on ``score_images`` images held out of the training split; uniform
training holds out the same images, so both train on identical data at equal steps.

A saved supernet is two files: ``supernet.safetensors`` (weights, read without running code)
and ``supernet.json`` (space, layout, task, training settings, the candidate pool, timings).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from jointnas import files
from jointnas.errors import ConfigError, JointNASError
from jointnas.spaces.recipe import Recipe
from jointnas.spaces.shufflenet_choice import ShuffleChoiceSpace
from jointnas.supernet.greedy import GreedyPaths
from jointnas.supernet.model import Supernet, build_supernet
from jointnas.supernet.paths import PathSampler, UniformPaths
from jointnas.training.data import Dataset
from jointnas.training.trainer import StepHook, TrainResult, train
from jointnas.validated import Validated

WEIGHTS, INFO = "supernet.safetensors", "supernet.json"
SAMPLING = ("uniform", "greedy")


@dataclass(frozen=True, kw_only=True)
class SupernetConfig(Validated):
    """How the supernet is trained; defaults follow SPOS / GreedyNAS at this machine's scale."""

    sampling: str = "greedy"
    epochs: int = 10
    batch_size: int = 128
    #: SPOS: SGD with label smoothing 0.1 and weight decay 4e-5
    recipe: Recipe = field(
        default_factory=lambda: Recipe(lr=0.1, weight_decay=4e-5, label_smoothing=0.1)
    )
    #: 0: uniform choices per layer; N: uniform over N FLOPs bins first (megvii's code)
    flops_bins: int = 0
    score_images: int = 1000
    m: int = 10
    k: int = 5
    pool_size: int = 50
    warmup: float = 0.2
    stop_turnover: float = 0.08

    POSITIVE: ClassVar[tuple[str, ...]] = (
        "epochs",
        "batch_size",
        "score_images",
        "m",
        "k",
        "pool_size",
    )
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ("flops_bins",)

    def check(self) -> None:
        super().check()
        if self.sampling not in SAMPLING:
            raise ConfigError(f"sampling must be one of {SAMPLING}, got {self.sampling!r}")
        if self.k > self.m:
            raise ConfigError(f"GreedyNAS trains k of m scored paths: k={self.k} > m={self.m}")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "recipe": asdict(self.recipe)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SupernetConfig:
        return cls(**{**d, "recipe": Recipe(**d["recipe"])})


@dataclass
class SupernetRun:
    """A trained supernet and what its training recorded."""

    supernet: Supernet
    space: ShuffleChoiceSpace
    config: SupernetConfig
    result: TrainResult
    hook: StepHook
    info: dict[str, Any]


def split_score(data: Dataset, n: int) -> tuple[Dataset, torch.Tensor, torch.Tensor]:
    """(training data without the last ``n`` training images, those images, their labels)."""
    if n >= data.num_train:
        raise ConfigError(f"score_images={n} leaves no training images of {data.num_train}")
    rest = dataclasses.replace(data, x_train=data.x_train[:-n], y_train=data.y_train[:-n])
    held = torch.arange(data.num_train - n, data.num_train)
    return rest, data.fit_images(held, device=torch.device("cpu")), data.y_train[-n:]


class _Bar(StepHook):
    """Wraps a path hook with a tqdm bar over the training steps."""

    def __init__(self, inner: StepHook, total: int, desc: str) -> None:
        from tqdm.auto import tqdm

        self.inner, self.bar = inner, tqdm(total=total, desc=desc)

    def config(self) -> dict:
        return self.inner.config()

    def before_step(self, model: nn.Module, step: int) -> None:
        if self.bar.n == 0 and step:
            self.bar.update(step)  # resumed: show the steps already done
        self.inner.before_step(model, step)
        self.bar.update(1)

    def end_epoch(self, model: nn.Module, epoch: int) -> bool:
        return self.inner.end_epoch(model, epoch)

    def state_dict(self) -> dict:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state)


def make_hook(
    space: ShuffleChoiceSpace,
    config: SupernetConfig,
    *,
    seed: int,
    total_steps: int,
    x_score: torch.Tensor,
    y_score: torch.Tensor,
    task: dict[str, int],
) -> UniformPaths | GreedyPaths:
    sampler = PathSampler(space, seed=seed, flops_bins=config.flops_bins, **task)
    if config.sampling == "uniform":
        return UniformPaths(sampler)
    return GreedyPaths(
        sampler,
        x_score=x_score,
        y_score=y_score,
        total_steps=total_steps,
        m=config.m,
        k=config.k,
        pool_size=config.pool_size,
        warmup=config.warmup,
        stop_turnover=config.stop_turnover,
    )


def train_supernet(
    space: ShuffleChoiceSpace,
    data: Dataset,
    *,
    config: SupernetConfig = SupernetConfig(),
    seed: int = 0,
    device: str | torch.device = "auto",
    checkpoint: str | Path | None = None,
    init: Supernet | None = None,
    progress: bool = True,
) -> SupernetRun:
    """Train a supernet of ``space`` on ``data`` one path per step. ``init`` continues from a
    trained supernet (DetNAS: fine-tune a supernet pretrained on another task); ``checkpoint``
    makes a killed training resume where it stopped."""
    if not isinstance(space, ShuffleChoiceSpace):
        raise ConfigError(f"a supernet needs the shufflenet-choice space, got {space.name!r}")
    task = {"num_classes": data.num_classes, "in_channels": data.in_channels}
    data = data.at_resolution(space.layout.resolution)
    train_data, x_score, y_score = split_score(data, config.score_images)
    if init is None:
        supernet = build_supernet(space.arch_of([0] * space.layout.num_layers), **task, seed=seed)
    else:
        if (init.num_classes, init.in_channels) != tuple(task.values()):
            raise ConfigError(
                f"the initial supernet is for {init.num_classes} classes and "
                f"{init.in_channels} channel(s); the data has {task['num_classes']} and "
                f"{task['in_channels']}"
            )
        supernet = init
    steps = -(-train_data.num_train // config.batch_size) * config.epochs
    hook = make_hook(
        space, config, seed=seed, total_steps=steps, x_score=x_score, y_score=y_score, task=task
    )
    driver: StepHook = _Bar(hook, steps, f"supernet ({config.sampling})") if progress else hook
    t0 = time.perf_counter()
    try:
        result = train(
            supernet,
            config.recipe,
            train_data,
            epochs=config.epochs,
            seed=seed,
            device=device,
            batch_size=config.batch_size,
            bn_recalibration=0,
            checkpoint=checkpoint,
            hook=driver,
        )
    finally:
        if progress:
            driver.bar.close()
    greedy = isinstance(hook, GreedyPaths)
    info = {
        "space": space.name,
        "layout": space.layout.name,
        "fingerprint": space.fingerprint(),
        "task": task,
        "data": data.name,
        "seed": seed,
        "config": config.to_json(),
        "fine_tuned": init is not None,
        "epochs_trained": len(result.val_acc),
        "steps_trained": len(result.val_acc) * (steps // config.epochs),
        "seconds": time.perf_counter() - t0,
        "train_seconds": len(result.val_acc) * train_data.num_train / result.train_images_per_s,
        "score_seconds": hook.score_seconds if greedy else 0.0,
        "paths_scored": hook.scored if greedy else 0,
        "pool": [[list(p), loss] for p, loss in hook.pool.best()] if greedy else [],
        "turnover": list(hook.history) if greedy else [],
        "last_path_val_acc": list(result.val_acc),
    }
    return SupernetRun(supernet.cpu(), space, config, result, hook, info)


def save_supernet(run: SupernetRun, directory: str | Path) -> Path:
    """Write ``supernet.safetensors`` and ``supernet.json`` into ``directory`` (atomically)."""
    out = Path(directory)
    files.write_weights(run.supernet, out / WEIGHTS)
    files.write_text(out / INFO, json.dumps(run.info, indent=2))
    return out


def load_supernet(directory: str | Path) -> tuple[Supernet, ShuffleChoiceSpace, dict[str, Any]]:
    """The supernet saved in ``directory``, its space and its info; ``JointNASError`` with one
    line when the files are missing or do not belong together."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    out = Path(directory)
    try:
        info = json.loads((out / INFO).read_text())
        space = ShuffleChoiceSpace(layout=info["layout"])
        task = {k: int(v) for k, v in info["task"].items()}
        supernet = Supernet(space.arch_of([0] * space.layout.num_layers), **task)
        supernet.load_state_dict(load_file(str(out / WEIGHTS)))
    except FileNotFoundError as exc:
        raise JointNASError(f"no saved supernet in {out}: {exc.filename} is missing") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise JointNASError(f"{out / INFO} is not a supernet description: {exc}") from None
    except (RuntimeError, SafetensorError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise JointNASError(f"{out / WEIGHTS} does not fit {out / INFO}: {first}") from None
    if info.get("fingerprint") != space.fingerprint():
        raise JointNASError(f"{out / INFO} was saved for another version of the space")
    return supernet.eval(), space, info
