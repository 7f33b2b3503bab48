"""The default evaluator: build the candidate's network and train it from scratch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from jointnas.evaluators.base import Evaluation
from jointnas.spaces.base import Candidate, Space
from jointnas.spaces.recipe import Recipe
from jointnas.training.data import Dataset
from jointnas.training.trainer import train


@dataclass(frozen=True, kw_only=True)
class TrainFromScratch:
    """Train each candidate for ``epochs`` on ``data`` with its recipe (``default_recipe`` for
    a space that searches no recipe); the value is the last epoch's validation accuracy."""

    data: Dataset
    epochs: int = 2
    device: str = "auto"
    batch_size: int = 128
    #: further ``jointnas.train`` arguments (``schedule_epochs``, ``channels_last``, ...)
    train_kwargs: Mapping[str, Any] = field(default_factory=dict)
    default_recipe: Recipe = field(default_factory=Recipe)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")

    @property
    def num_classes(self) -> int:
        return self.data.num_classes

    @property
    def in_channels(self) -> int:
        return self.data.in_channels

    def evaluate(
        self,
        space: Space,
        candidate: Candidate,
        *,
        seed: int,
        trial: optuna.trial.BaseTrial | None = None,
        checkpoint: Path | None = None,
    ) -> Evaluation:
        model = space.build_model(
            candidate.arch, num_classes=self.num_classes, in_channels=self.in_channels, seed=seed
        )
        result = train(
            model,
            candidate.recipe if candidate.recipe is not None else self.default_recipe,
            self.data,
            epochs=self.epochs,
            seed=seed,
            device=self.device,
            trial=trial,
            batch_size=self.batch_size,
            resolution=getattr(candidate.arch, "resolution", None),
            checkpoint=checkpoint,
            **self.train_kwargs,
        )
        return Evaluation(
            value=result.final_acc,
            curve=tuple(result.val_acc),
            attrs={
                "train_seconds": round(result.seconds, 3),
                "images_per_s": round(result.train_images_per_s, 1),
            },
            model=result.evaluated,
            resumed_epochs=result.resumed_epochs,
        )
