"""Build a torch model from a decoded architecture.

``build_model`` looks up the ``Network`` declared for the architecture's type (``network``: a
space class declares it, so this module knows no space). It also holds what every builder
shares: seeding, the pycls/timm weight initialisation and the task checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from jointnas.spaces.nets.blocks import InvertedResidual
from jointnas.spaces.nets.network import network_of


def build_model(
    arch: Any, num_classes: int, in_channels: int, *, seed: int | None = None
) -> nn.Module:
    """Build the network for ``arch``; with ``seed``, initialise weights reproducibly without
    touching the caller's global torch RNG."""
    network = network_of(arch)
    if network is None:
        raise TypeError(
            f"no model builder registered for {type(arch).__name__}: declare a `network` on "
            "its Space class, or call the space's own `build_model`"
        )
    return network.build(arch, num_classes, in_channels, seed=seed)


def seeded(seed: int | None, make: Callable[[], nn.Module]) -> nn.Module:
    """``make()``, with weights drawn from ``seed`` when given, leaving the caller's global
    torch RNG as it was (every builder's ``seed=`` goes through here)."""
    if seed is None:
        return make()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def init_weights(model: nn.Module) -> None:
    """pycls/timm initialisation: He-normal (fan-out) convs, small-normal classifier, and a
    zero BN scale closing each residual branch so every block starts as the identity, which
    makes the short trainings of a search learn faster than PyTorch's default init."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for m in model.modules():
        if isinstance(m, InvertedResidual) and m.residual:
            nn.init.zeros_(m.project[1].weight)


def check_task(num_classes: int, in_channels: int) -> None:
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
