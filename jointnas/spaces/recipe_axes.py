"""The recipe axes every joint space searches: one set of names and ranges, one decoding.

FBNetV3, EfficientNet, AnyNet and RegNet search the training recipe jointly with the
architecture. They take its parameters from here, so a recipe value means the same in every
space (AutoTrain transfer and the predictors' recipe features compare like with like) and no
space has to build another to read them. ``RecipeRanges`` holds the ranges; the two sets are
FBNetV3's (``small`` for the digits-sized spaces, ``imagenet`` with the paper's tighter weight
decay and stronger regularisation).

``augment`` (RandAugment strength, ``jointnas.training.augment``) joined the axes later.
Studies and predictors recorded before it carry the fingerprint of their space without it;
``before_augment_axis()`` rebuilds such a space as it was (``registry.space_from_record``
falls back to it when a stored fingerprint matches that older definition), so they still
resume and load, and their candidates train with augment 0, as they did.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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
    "augment",
)
_WITH_AUGMENT = contextvars.ContextVar("jointnas_recipe_augment_axis", default=True)


@contextmanager
def before_augment_axis() -> Iterator[None]:
    """Spaces built inside have the recipe axes they had before ``augment`` existed."""
    token = _WITH_AUGMENT.set(False)
    try:
        yield
    finally:
        _WITH_AUGMENT.reset(token)


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
    augment: tuple[float, float] = (0.0, 1.0)
    optimizers: tuple[str, ...] = OPTIMIZERS


#: FBNetV3's recipe ranges by preset name (EfficientNet's layouts name the one they search)
RECIPE_RANGES: dict[str, RecipeRanges] = {
    "small": RecipeRanges(),
    "imagenet": RecipeRanges(weight_decay=(1e-6, 1e-4), dropout=(0.1, 0.3), drop_path=(0.0, 0.4)),
}


def recipe_distributions(
    ranges: RecipeRanges = RECIPE_RANGES["small"],
) -> dict[str, BaseDistribution]:
    """The recipe parameters of ``ranges`` as Optuna distributions, in ``RECIPE_KEYS`` order
    (without ``augment`` inside ``before_augment_axis()``)."""
    dists: dict[str, BaseDistribution] = {
        "optimizer": CategoricalDistribution(ranges.optimizers),
        "lr": FloatDistribution(*ranges.lr, log=True),
        "weight_decay": FloatDistribution(*ranges.weight_decay, log=True),
        "mixup": FloatDistribution(*ranges.mixup),
        "dropout": FloatDistribution(*ranges.dropout),
        "drop_path": FloatDistribution(*ranges.drop_path),
        "ema": CategoricalDistribution((False, True)),
        "label_smoothing": FloatDistribution(*ranges.label_smoothing),
    }
    if _WITH_AUGMENT.get():
        dists["augment"] = FloatDistribution(*ranges.augment)
    return dists


def recipe_of(values: Mapping[str, Any]) -> Recipe:
    """The ``Recipe`` of a complete params dict (searched and fixed values merged); a space
    built before the ``augment`` axis has none, which is augment 0."""
    return Recipe(**{k: values[k] for k in RECIPE_KEYS if k in values})
