"""The one Fashion-MNIST split of the scale studies (``bench_budget_study``,
``bench_equal_compute``): the 60,000 training images split once, stratified with seed 0, into
50,000 for training and 10,000 held out for validation (binomial sampling error <= 0.004 at
85% accuracy), so every recipe, budget and method is scored on the same images. The official
10,000-image test set is read only where a study's final answers are scored.
"""

from __future__ import annotations

import functools
from typing import Any

VAL_FRACTION = 1 / 6  # 10,000 of Fashion-MNIST's 60,000 training images


@functools.lru_cache(maxsize=4)
def fashion_split(train_images: int, *, test: bool = False) -> Any:
    """The first ``train_images`` of the 50,000 training images with the 10,000 held-out ones
    (``test``: the same training images with the official test set in their place), loaded
    once per process."""
    from jointnas.training.data import load_dataset, load_fashion_mnist_test

    load = load_fashion_mnist_test if test else load_dataset
    full = load("fashion-mnist", val_fraction=VAL_FRACTION, seed=0)
    return full.subset(train=min(train_images, full.num_train))
