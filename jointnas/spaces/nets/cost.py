"""Analytic cost of an architecture: MFLOPs, parameters, activations.

``cost(arch)`` looks up the ``Network`` declared for the architecture's type (``network``:
a space class declares it, so this module knows no space). ``cost_batch(space, X)`` is the
population view: the space's vectorised twin where it has one, else its row-by-row fallback
(``Space.cost_batch``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jointnas.spaces.nets.blocks import Cost
from jointnas.spaces.nets.network import network_of


def cost(arch: Any, *, num_classes: int, in_channels: int) -> Cost:
    """Exact analytic cost of the model ``build_model(arch, num_classes, in_channels)``."""
    network = network_of(arch)
    if network is None:
        raise TypeError(
            f"no cost model registered for {type(arch).__name__}: declare a `network` on "
            "its Space class, or call the space's own `cost`"
        )
    return network.cost(arch, num_classes=num_classes, in_channels=in_channels)


def cost_batch(space: Any, X: np.ndarray, *, num_classes: int, in_channels: int) -> Cost:
    """Cost of an encoded population of ``space``: a Cost of int64 arrays, one per row."""
    return space.cost_batch(
        np.asarray(X, dtype=float), num_classes=num_classes, in_channels=in_channels
    )
