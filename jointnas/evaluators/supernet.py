"""Score a candidate without training it: inherit a supernet's weights, recalibrate BatchNorm.

The subnet is extracted as a stand-alone copy (``Supernet.subnet``), so recalibration never
touches the supernet's own statistics and trials can run side by side. Recalibration (SPOS,
DetNAS) resets every running mean/var of the subnet and recomputes them as exact averages over
``recal_images`` training images under no_grad: the running statistics a supernet keeps mix
the activations of every path through a block, which is not this subnet's distribution.
``recal_images=0`` keeps the inherited statistics (the ablation in BENCHMARKS.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch

from jointnas.errors import ConfigError
from jointnas.evaluators.base import Evaluation
from jointnas.spaces.base import Candidate, Space
from jointnas.supernet.model import Supernet
from jointnas.training.bn import recalibrate_bn
from jointnas.training.data import Dataset
from jointnas.training.trainer import evaluate, resolve_device


@dataclass(frozen=True, kw_only=True)
class InheritWeights:
    """The validation accuracy of ``candidate`` with weights inherited from ``supernet``."""

    supernet: Supernet
    data: Dataset
    #: training images BN statistics are recomputed on (the first ones; 0: inherited stats)
    recal_images: int = 1024
    device: str = "auto"
    batch_size: int = 500

    def __post_init__(self) -> None:
        if self.recal_images < 0:
            raise ConfigError(f"recal_images must be >= 0, got {self.recal_images}")
        task = (self.data.num_classes, self.data.in_channels)
        if task != (self.supernet.num_classes, self.supernet.in_channels):
            raise ConfigError(
                f"the supernet is for {self.supernet.num_classes} classes and "
                f"{self.supernet.in_channels} channel(s); the data has {task[0]} and {task[1]}"
            )

    @property
    def num_classes(self) -> int:
        return self.supernet.num_classes

    @property
    def in_channels(self) -> int:
        return self.supernet.in_channels

    def subnet(self, choices: tuple[int, ...]) -> torch.nn.Module:
        """The recalibrated stand-alone subnet of ``choices`` on the evaluation device."""
        dev = resolve_device(self.device)
        self.supernet.to(dev)
        net = self.supernet.subnet(choices)
        data = self.data.at_resolution(self.supernet.arch.resolution)
        if self.recal_images:
            x = data.fit_images(torch.arange(min(self.recal_images, data.num_train)), device=dev)
            recalibrate_bn(net, x, batch_size=self.batch_size)
        return net.eval()

    def evaluate(
        self,
        space: Space,
        candidate: Candidate,
        *,
        seed: int,
        trial: optuna.trial.BaseTrial | None = None,
        checkpoint: Path | None = None,
    ) -> Evaluation:
        """``seed``, ``trial`` and ``checkpoint`` are unused: the score is deterministic and
        takes a second, so there is nothing to resume."""
        arch = candidate.arch
        frame = self.supernet.arch
        if not hasattr(arch, "choices") or (
            type(arch)(**{**vars(arch), "choices": frame.choices}) != frame
        ):
            raise ConfigError(f"candidate of {space.name!r} is not a path of this supernet")
        t0 = time.perf_counter()
        net = self.subnet(arch.choices)
        data = self.data.at_resolution(frame.resolution)
        dev = next(net.parameters()).device
        with torch.no_grad():
            acc = evaluate(net, data.val_batches(device=dev, batch_size=self.batch_size))
        return Evaluation(
            value=acc,
            curve=(acc,),
            attrs={
                "supernet_eval_seconds": round(time.perf_counter() - t0, 3),
                "bn_recal_images": self.recal_images,
            },
        )
