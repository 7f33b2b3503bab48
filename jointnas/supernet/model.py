"""The weight-sharing supernet of the choice-block space: every choice of every layer, one path
at a time.

``Supernet`` holds the four ``ChoiceBlock`` s of each layer side by side and runs the path in
``self.path`` (one choice index per layer). Whoever trains it sets the path before each step
(``jointnas.supernet.paths``); the blocks off the path take no part in the forward pass, so
they get no gradient, and since the optimizers skip parameters whose ``grad`` is None (the
trainer zeroes with ``set_to_none``), no momentum or weight decay either: SPOS's rule, tested.

``subnet(choices)`` extracts a stand-alone ``ChoiceNet`` with the inherited weights: the
supernet's parameter names are the stand-alone network's with the choice index inserted
(``features.3.2.main...`` -> ``features.3.main...``), so extraction is a key mapping.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import torch
from torch import nn

from jointnas.spaces.nets.model import check_task, init_weights, seeded
from jointnas.spaces.nets.shufflenet import (
    CHOICES,
    ChoiceBlock,
    ChoiceNet,
    ShuffleArch,
    Stem,
    spos_head,
)

_CHOICE_KEY = re.compile(r"^features\.(\d+)\.(\d+)\.(.*)$")


class Supernet(nn.Module):
    """All choice blocks of ``arch``'s frame (its ``choices`` only give the starting path)."""

    def __init__(self, arch: ShuffleArch, num_classes: int, in_channels: int) -> None:
        super().__init__()
        check_task(num_classes, in_channels)
        self.arch = arch
        self.num_classes, self.in_channels = num_classes, in_channels
        self.stem = Stem(in_channels, arch.stem_width, 3, arch.stem_stride, act="relu")
        self.features = nn.ModuleList(
            nn.ModuleList(
                ChoiceBlock(cin, cout, choice=c, stride=stride) for c in range(len(CHOICES))
            )
            for _, _, cin, cout, stride in arch.layer_shapes()
        )
        self.head = spos_head(arch.widths[-1], arch.last_width, num_classes)
        init_weights(self)
        self.path: tuple[int, ...] = tuple(arch.choices)

    @property
    def num_layers(self) -> int:
        return len(self.features)

    def set_path(self, path: Sequence[int]) -> None:
        path = tuple(int(c) for c in path)
        if len(path) != self.num_layers or any(c not in range(len(CHOICES)) for c in path):
            raise ValueError(f"a path is {self.num_layers} choices in 0..3, got {path}")
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer, choice in zip(self.features, self.path, strict=True):
            x = layer[choice](x)
        return self.head(x)

    def subnet_state(self, choices: Sequence[int]) -> dict[str, torch.Tensor]:
        """The state dict of the stand-alone ``ChoiceNet`` of ``choices`` (shared tensors)."""
        out = {}
        for key, value in self.state_dict().items():
            m = _CHOICE_KEY.match(key)
            if m is None:
                out[key] = value
            elif int(m.group(2)) == int(choices[int(m.group(1))]):
                out[f"features.{m.group(1)}.{m.group(3)}"] = value
        return out

    def subnet(self, choices: Sequence[int]) -> ChoiceNet:
        """A stand-alone copy of the subnet on ``choices``, with the inherited weights and
        BN statistics, on the supernet's device."""
        arch = dataclasses.replace(self.arch, choices=tuple(int(c) for c in choices))
        net = ChoiceNet(arch, self.num_classes, self.in_channels)
        net.load_state_dict(self.subnet_state(choices))
        device = next(self.parameters()).device
        return net.to(device)


def build_supernet(
    arch: ShuffleArch, *, num_classes: int, in_channels: int, seed: int | None = None
) -> Supernet:
    """The supernet of ``arch``'s layout, weights drawn from ``seed`` when given."""
    return seeded(seed, lambda: Supernet(arch, num_classes, in_channels))
