"""The seeded, stratified train/val split every data source goes through.

Stratification keeps small validation sets representative of every class, which keeps
predictor targets comparable between trials; the seed makes the split reproducible, so every
worker process and every rerun of a search trains and scores on the same images.
"""

from __future__ import annotations

import numpy as np

from jointnas.errors import DatasetError


def stratified_split(
    name: str,
    y: np.ndarray,
    classes: list,
    *,
    val_fraction: float,
    seed: int,
    max_images_per_class: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train indices, val indices, dense labels, sorted raw labels): stratified and seeded."""
    labels, y = np.unique(y, return_inverse=True)
    shown = classes or labels.tolist()
    if len(labels) < 2:
        raise DatasetError(
            f"dataset {name!r} needs at least 2 classes, found {len(labels)}: {shown}"
        )
    keep = np.arange(len(y))
    if max_images_per_class is not None:
        rng = np.random.default_rng(seed)
        keep = np.sort(
            np.concatenate(
                [
                    rng.permutation(np.flatnonzero(y == k))[:max_images_per_class]
                    for k in range(len(labels))
                ]
            )
        )
    counts = np.bincount(y[keep], minlength=len(labels))
    if counts.min() < 2:
        k = int(counts.argmin())
        raise DatasetError(
            f"dataset {name!r}: class {shown[k]!r} has {counts[k]} image(s); "
            "a stratified split needs at least 2 per class"
        )
    from sklearn.model_selection import train_test_split  # 1.5 s to import: every CLI call

    try:
        idx_train, idx_val = train_test_split(
            keep, test_size=val_fraction, stratify=y[keep], random_state=seed
        )
    except ValueError as e:
        raise DatasetError(
            f"cannot split dataset {name!r} with val_fraction={val_fraction}: {e}"
        ) from e
    return idx_train, idx_val, y, labels
