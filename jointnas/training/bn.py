"""BatchNorm statistics recalibration.

Short trainings move the weights faster than BN's running averages (momentum 0.1) can follow,
so an early-stopped candidate evaluated with its running statistics can score near chance while
the same weights with fresh statistics are accurate (measured: 0.20 vs 0.91 after one epoch on
MNIST-5k). Recomputing the statistics on a few training batches before evaluating fixes the
ranking. One-shot supernets (DetNAS, SPOS) use the same step for every sampled path.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module,
    x: torch.Tensor | Iterable[torch.Tensor],
    *,
    batch_size: int = 256,
    channels_last: bool = False,
) -> None:
    """Replace every BatchNorm's running mean/var by exact averages over ``x`` (a tensor, cut
    into ``batch_size`` batches, or an iterable of batches, so large images need not be held
    at once; train mode, cumulative averaging), then restore each layer's momentum and the
    model's mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    batches = x.split(batch_size) if isinstance(x, torch.Tensor) else x
    if not norms:
        return
    was_training = model.training
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the batches below
    model.train()
    for xb in batches:
        if len(xb):
            model(xb.contiguous(memory_format=torch.channels_last) if channels_last else xb)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.train(was_training)
