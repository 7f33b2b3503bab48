"""The training recipe every space shares: what the trainer composes, each piece off by default.

It lives outside any space module so that the trainer (and any evaluator) depends on the recipe
alone, never on a space: a space decodes its recipe parameters into this type, and a space that
searches no recipe gets ``Recipe()`` (SGD with its default learning rate, nothing else on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

OPTIMIZERS = ("sgd", "rmsprop", "adamw")


@dataclass(frozen=True)
class Recipe:
    """A decoded training recipe; every regulariser at 0/False means off."""

    optimizer: str = "sgd"
    lr: float = 0.1
    weight_decay: float = 5e-5
    mixup: float = 0.0
    dropout: float = 0.0
    drop_path: float = 0.0
    ema: bool = False
    label_smoothing: float = 0.0
    #: RandAugment strength in [0, 1] (its magnitude as a fraction of its range); 0 is off.
    #: The data's base crop/flip is not part of the recipe (``jointnas.training.augment``)
    augment: float = 0.0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r} is not one of {OPTIMIZERS}")
        numbers = ("lr", "weight_decay", "mixup", "dropout", "drop_path", "label_smoothing")
        for name in (*numbers, "augment"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"recipe {name} = {value!r} must be a finite number >= 0")
        if self.lr == 0:
            raise ValueError("recipe lr must be > 0")
        for name in ("dropout", "drop_path", "label_smoothing"):
            if getattr(self, name) >= 1:
                raise ValueError(f"recipe {name} = {getattr(self, name)!r} must be < 1")
        if self.augment > 1:
            raise ValueError(f"recipe augment = {self.augment!r} must be <= 1")
