"""The recipe axes every joint space searches: one set of names and ranges, one decoding.

FBNetV3, EfficientNet, AnyNet and RegNet search the training recipe jointly with the
architecture. They take its parameters from here, so a recipe value means the same in every
space (AutoTrain transfer and the predictors' recipe features compare like with like) and no
space has to build another to read them. ``RecipeRanges`` holds the ranges; the two sets are
FBNetV3's (``small`` for the digits-sized spaces, ``imagenet`` with the paper's tighter weight
decay and stronger regularisation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution

from jointnas.spaces.recipe import OPTIMIZERS, Recipe

#: the recipe parameters, in the order every joint space lists them
RECIPE_KEYS = (
    "optimizer",
    "lr",
    "weight_decay",
    "mixup",
    "dropout",
    "drop_path",
    "ema",
    "label_smoothing",
)


@dataclass(frozen=True, kw_only=True)
class RecipeRanges:
    """Inclusive (low, high) of each numeric recipe axis, and the optimizers to choose from.
    Learning rate and weight decay are searched on a log scale; EMA is on or off."""

    lr: tuple[float, float] = (0.01, 0.5)
    weight_decay: tuple[float, float] = (1e-5, 1e-3)
    mixup: tuple[float, float] = (0.0, 1.0)
    dropout: tuple[float, float] = (0.0, 0.3)
    drop_path: tuple[float, float] = (0.0, 0.3)
    label_smoothing: tuple[float, float] = (0.0, 0.2)
    optimizers: tuple[str, ...] = OPTIMIZERS


#: FBNetV3's recipe ranges by preset name (EfficientNet's layouts name the one they search)
RECIPE_RANGES: dict[str, RecipeRanges] = {
    "small": RecipeRanges(),
    "imagenet": RecipeRanges(weight_decay=(1e-6, 1e-4), dropout=(0.1, 0.3), drop_path=(0.0, 0.4)),
}


def recipe_distributions(
    ranges: RecipeRanges = RECIPE_RANGES["small"],
) -> dict[str, BaseDistribution]:
    """The recipe parameters of ``ranges`` as Optuna distributions, in ``RECIPE_KEYS`` order."""
    return {
        "optimizer": CategoricalDistribution(ranges.optimizers),
        "lr": FloatDistribution(*ranges.lr, log=True),
        "weight_decay": FloatDistribution(*ranges.weight_decay, log=True),
        "mixup": FloatDistribution(*ranges.mixup),
        "dropout": FloatDistribution(*ranges.dropout),
        "drop_path": FloatDistribution(*ranges.drop_path),
        "ema": CategoricalDistribution((False, True)),
        "label_smoothing": FloatDistribution(*ranges.label_smoothing),
    }


def recipe_of(values: Mapping[str, Any]) -> Recipe:
    """The ``Recipe`` of a complete params dict (searched and fixed values merged)."""
    return Recipe(**{k: values[k] for k in RECIPE_KEYS})
