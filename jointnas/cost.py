"""Analytic cost of an architecture: MFLOPs, parameters, activations.

``cost(arch)`` walks the blocks with plain ints; ``cost_batch(space, X)`` walks the same block
formulas (``jointnas.blocks``) once for a whole encoded population with numpy arrays, masking the
blocks that a candidate's depth leaves out. Both equal fvcore's count of the built model (tests).
``cost`` dispatches on the architecture type and ``cost_batch`` on the space type, so another
space registers its own; a space without a batch cost raises NotImplementedError (predictors then
skip their cost proxy).
"""

from __future__ import annotations

from functools import singledispatch
from typing import Any

import numpy as np

from jointnas.blocks import ZERO, ConvBNAct, Cost, Head, InvertedResidual, out_size
from jointnas.spaces.fbnetv3 import Arch, FBNetV3Space


@singledispatch
def cost(arch: Any, *, num_classes: int, in_channels: int) -> Cost:
    """Exact analytic cost of the model ``build_model(arch, num_classes, in_channels)``."""
    raise TypeError(f"no cost model registered for {type(arch).__name__}")


@cost.register
def _(arch: Arch, *, num_classes: int, in_channels: int) -> Cost:
    size = arch.resolution
    total = ConvBNAct.cost(in_channels, arch.stem_width, 3, arch.stem_stride, size)
    size = out_size(size, arch.stem_stride)
    cin = arch.stem_width
    for stage in arch.stages:
        for j in range(stage.depth):
            stride = stage.stride if j == 0 else 1
            total = total + InvertedResidual.cost(
                cin,
                stage.width,
                kernel=stage.kernel,
                stride=stride,
                expansion=stage.expansion,
                se=stage.se,
                size=size,
            )
            size = out_size(size, stride)
            cin = stage.width
    total = total + Head.cost(cin, arch.head_width, num_classes, size)
    return Cost(int(total.flops), int(total.params), int(total.acts))


@singledispatch
def cost_batch(space: Any, X: np.ndarray, *, num_classes: int, in_channels: int) -> Cost:
    """Vectorised cost of an encoded population of ``space``: a Cost of int64 arrays."""
    raise NotImplementedError(f"no batch cost registered for {type(space).__name__}")


@cost_batch.register
def _(space: FBNetV3Space, X: np.ndarray, *, num_classes: int, in_channels: int) -> Cost:
    """Vectorised twin of ``cost`` for an encoded population ``X`` (rows of ``space.encode``):
    returns a Cost of int64 arrays, one entry per row, in one pass without a Python row loop."""
    cols: dict[str, Any] = dict(space.encoder.columns(X))
    n = len(X)
    for name, dist in space.distributions.items():
        if name.endswith("_kernel"):  # category index -> kernel size
            cols[name] = np.asarray(dist.choices, dtype=np.int64)[cols[name]]  # type: ignore
    full = {
        **{
            k: np.full(n, v, dtype=np.int64)
            for k, v in space.fixed.items()
            if isinstance(v, int) and not isinstance(v, bool)
        },
        **cols,
    }
    pre = space.preset
    size = full["resolution"].astype(np.int64)
    total = ConvBNAct.cost(in_channels, full["stem_width"], 3, pre.stem_stride, size)
    size = out_size(size, pre.stem_stride)
    cin = full["stem_width"]
    for i, spec in enumerate(pre.stages, start=1):
        width, depth = full[f"s{i}_width"], full[f"s{i}_depth"]
        kernel, expansion = full[f"s{i}_kernel"], full[f"s{i}_expansion"]
        for j in range(spec.depth[1]):
            stride = spec.stride if j == 0 else 1
            block = InvertedResidual.cost(
                cin, width, kernel=kernel, stride=stride, expansion=expansion, se=spec.se, size=size
            )
            total = total + (block if j == 0 else block.masked(depth > j))
            size = out_size(size, stride)  # stride > 1 only on the always-present first block
            cin = width
    total = ZERO + total + Head.cost(cin, pre.head_width, num_classes, size)
    return Cost(*(np.asarray(v, dtype=np.int64) for v in (total.flops, total.params, total.acts)))
