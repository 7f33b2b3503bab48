"""One check for every space's vectorised cost twin: it equals the scalar cost, row by row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jointnas.spaces.base import Space
from jointnas.spaces.nets.cost import cost_batch


def assert_batch_equals_scalar(
    space: Space, samples: Sequence[Mapping[str, Any]], task: Mapping[str, int]
) -> None:
    """``cost_batch`` of the encoded ``samples`` is int64, one value per row, equal to the
    scalar cost of each decoded sample, and varies (so the samples really differ)."""
    batch = cost_batch(space, space.encode(samples), **task)
    scalar = [space.cost(space.decode(p).arch, **task) for p in samples]
    for field in ("flops", "params", "acts"):
        values = getattr(batch, field)
        assert isinstance(values, np.ndarray) and values.dtype == np.int64
        assert values.shape == (len(samples),)
        np.testing.assert_array_equal(values, [getattr(c, field) for c in scalar])
    assert len(set(batch.flops.tolist())) > len(samples) // 2
