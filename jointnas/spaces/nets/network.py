"""Which network an architecture type builds: the one table behind ``jointnas.cost`` and
``jointnas.build_model``.

A space class declares its ``Network`` (architecture type, builder, exact cost) as a class
attribute, and defining the class enters it here (``Space.__init_subclass__``); the name a
space is registered under (``jointnas.spaces.register``) is the only registration it makes.
The table lives below ``spaces.base`` so that the dispatchers (``cost``, ``model``) read it
without importing any space module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from jointnas.spaces.nets.blocks import Cost


@dataclass(frozen=True)
class Network:
    """An architecture type and its twins: ``build(arch, num_classes, in_channels, *, seed)``
    makes the torch module, ``cost(arch, *, num_classes, in_channels)`` counts it exactly."""

    arch: type
    build: Callable[..., nn.Module]
    cost: Callable[..., Cost]


_NETWORKS: dict[type, tuple[Network, str]] = {}


def add_network(network: Network, *, owner: str) -> None:
    """Enter ``network`` for its architecture type, declared by ``owner`` (a space class's
    qualified name, for the error). Declaring the same network again is a no-op (subclasses,
    several presets of one space); a *different* network for a taken type is refused, since
    ``jointnas.cost`` would then depend on import order."""
    if not isinstance(network, Network):
        raise TypeError(f"{owner}.network must be a jointnas Network, got {network!r}")
    old = _NETWORKS.get(network.arch)
    if old is not None and old[0] != network:
        raise ValueError(
            f"{owner} declares a network for {network.arch.__qualname__}, which {old[1]} "
            "already declared differently"
        )
    if old is None:
        _NETWORKS[network.arch] = (network, owner)


def network_of(arch: Any) -> Network | None:
    """The network declared for ``arch``'s type or its nearest base class; None if none is."""
    for cls in type(arch).__mro__:
        found = _NETWORKS.get(cls)
        if found is not None:
            return found[0]
    return None
