"""ShuffleNetV2 choice blocks (SPOS / DetNAS), their cost twins, and the stand-alone network.

Every choice layer of the SPOS space is one of four blocks with the same input and output
shape, so a choice never changes the shapes around it and the network's cost is a sum of
independent per-layer terms (which is why the cheapest and dearest candidates are per-layer
argmin / argmax, and why the supernet can hold all four side by side):

* ``3x3``, ``5x5``, ``7x7``: ShuffleNetV2's unit with that depthwise kernel: 1x1 -> k x k
  depthwise -> 1x1 on the main branch;
* ``xception``: three (3x3 depthwise -> 1x1) pairs on the main branch.

A stride-1 block splits its input channels in half (after ShuffleNetV2's channel shuffle),
passes one half through and transforms the other; a stride-2 block feeds the whole input to the
main branch and to a projection branch (k x k depthwise s2 -> 1x1) and concatenates both. The
main branch is ``mid = out // 2`` wide, as in megvii's SinglePathOneShot ``network.py``.
Shuffle, split and concatenation cost nothing in fvcore's count.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from jointnas.spaces.nets.blocks import ZERO, ConvBNAct, Cost, Head, Int, Part, out_size, total_cost
from jointnas.spaces.nets.model import check_task, init_weights, seeded

#: the four choices of every layer, by index (the space's parameter values)
CHOICES = ("3x3", "5x5", "7x7", "xception")
KERNELS = (3, 5, 7, 3)


def channel_shuffle(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ShuffleNetV2's shuffle-and-split as SPOS writes it: interleave the channels in two
    groups and return the halves (the pass-through half first)."""
    n, c, h, w = x.shape
    x = x.reshape(n * c // 2, 2, h * w).permute(1, 0, 2).reshape(2, -1, c // 2, h, w)
    return x[0], x[1]


def _main_layers(cin: int, mid: int, cout: int, choice: int, stride: int) -> list[tuple]:
    """(cin, cout, kernel, stride, groups, act) of the main branch's convolutions."""
    if CHOICES[choice] == "xception":
        return [
            (cin, cin, 3, stride, cin, None),
            (cin, mid, 1, 1, 1, "relu"),
            (mid, mid, 3, 1, mid, None),
            (mid, mid, 1, 1, 1, "relu"),
            (mid, mid, 3, 1, mid, None),
            (mid, cout, 1, 1, 1, "relu"),
        ]
    k = KERNELS[choice]
    return [
        (cin, mid, 1, 1, 1, "relu"),
        (mid, mid, k, stride, mid, None),
        (mid, cout, 1, 1, 1, "relu"),
    ]


def _proj_layers(cin: int, choice: int) -> list[tuple]:
    return [(cin, cin, KERNELS[choice], 2, cin, None), (cin, cin, 1, 1, 1, "relu")]


def _convs_cost(layers: list[tuple], size: Int) -> Cost:
    total = ZERO
    for cin, cout, k, stride, groups, _ in layers:
        total = total + ConvBNAct.cost(cin, cout, k, stride, size, groups=groups)
        size = out_size(size, stride)
    return total


def _branch(layers: list[tuple]) -> nn.Sequential:
    return nn.Sequential(
        *(ConvBNAct(ci, co, k, s, groups=g, act=a) for ci, co, k, s, g, a in layers)
    )


class ChoiceBlock(nn.Module):
    """One SPOS choice block mapping ``cin`` to ``cout`` channels (see the module docstring)."""

    def __init__(self, cin: int, cout: int, *, choice: int, stride: int) -> None:
        super().__init__()
        check_block(cin, cout, stride)
        self.stride = stride
        branch_in = cin // 2 if stride == 1 else cin
        self.main = _branch(_main_layers(branch_in, cout // 2, cout - branch_in, choice, stride))
        self.proj = _branch(_proj_layers(cin, choice)) if stride == 2 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.proj is None:
            keep, x = channel_shuffle(x)
            return torch.cat((keep, self.main(x)), 1)
        return torch.cat((self.proj(x), self.main(x)), 1)

    @staticmethod
    def cost(cin: int, cout: int, *, choice: int, stride: int, size: Int) -> Cost:
        branch_in = cin // 2 if stride == 1 else cin
        main = _main_layers(branch_in, cout // 2, cout - branch_in, choice, stride)
        total = _convs_cost(main, size)
        if stride == 2:
            total = total + _convs_cost(_proj_layers(cin, choice), size)
        return total


def check_block(cin: int, cout: int, stride: int) -> None:
    """The shapes a choice block needs: a stride-1 block keeps the width (a multiple of 4, so
    the shuffle splits evenly); a stride-2 block widens (its main branch adds cout - cin)."""
    if stride == 1 and (cin != cout or cin % 4):
        raise ValueError(f"a stride-1 choice block keeps a width divisible by 4, got {cin}->{cout}")
    if stride == 2 and not (cout > cin and cout % 2 == 0):
        raise ValueError(f"a stride-2 choice block widens to an even width, got {cin}->{cout}")
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride}")


@dataclass(frozen=True)
class ShuffleArch:
    """A decoded SPOS network: the layout's frame and one choice index per layer."""

    layout: str
    resolution: int
    stem_width: int
    stem_stride: int
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    last_width: int
    choices: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.choices) != sum(self.depths):
            raise ValueError(f"{sum(self.depths)} choice layers, got {len(self.choices)} choices")
        bad = [c for c in self.choices if c not in range(len(CHOICES))]
        if bad:
            raise ValueError(f"choices are 0..{len(CHOICES) - 1} ({', '.join(CHOICES)}), got {bad}")

    def layer_shapes(self) -> Iterator[tuple[int, int, int, int, int]]:
        """(layer index, stage index, cin, cout, stride) of every choice layer, in order."""
        cin, index = self.stem_width, 0
        for stage, (depth, width) in enumerate(zip(self.depths, self.widths, strict=True)):
            for j in range(depth):
                yield index, stage, cin, width, 2 if j == 0 else 1
                cin, index = width, index + 1


class Stem(ConvBNAct):
    """3x3 conv + BN + ReLU."""


def spos_head(cin: int, width: int, num_classes: int) -> Head:
    """SPOS's head: 1x1 conv + ReLU to ``width``, pool, dropout, a bias-free fc (``Head``;
    the supernet builds the same one)."""
    return Head(cin, width, num_classes, act="relu", bias=False)


class ChoiceNet(nn.Module):
    """The stand-alone network of one choice vector: stem, ``features`` (one block per choice
    layer), head. Its parameter names are the supernet's with the choice index dropped, which
    is what ``jointnas.supernet`` relies on to extract a subnet."""

    def __init__(self, arch: ShuffleArch, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.stem = Stem(in_channels, arch.stem_width, 3, arch.stem_stride, act="relu")
        self.features = nn.Sequential(
            *(
                ChoiceBlock(cin, cout, choice=arch.choices[i], stride=stride)
                for i, _, cin, cout, stride in arch.layer_shapes()
            )
        )
        self.head = spos_head(arch.widths[-1], arch.last_width, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.stem(x)))


def build(
    arch: ShuffleArch, num_classes: int, in_channels: int, *, seed: int | None = None
) -> nn.Module:
    check_task(num_classes, in_channels)
    return seeded(seed, lambda: ChoiceNet(arch, num_classes, in_channels))


def part_costs(arch: ShuffleArch, *, num_classes: int, in_channels: int) -> list[Part]:
    """The stem, each choice layer and the head: ``jointnas describe``'s rows and, summed,
    ``arch_cost``."""
    stem = ConvBNAct.cost(in_channels, arch.stem_width, 3, arch.stem_stride, arch.resolution)
    size = out_size(arch.resolution, arch.stem_stride)
    parts = [Part("stem", arch.stem_width, size, stem)]
    for i, _, cin, cout, stride in arch.layer_shapes():
        c = ChoiceBlock.cost(cin, cout, choice=arch.choices[i], stride=stride, size=size)
        size = out_size(size, stride)
        parts.append(Part(f"layer{i + 1}", cout, size, c))
    head = Head.cost(arch.widths[-1], arch.last_width, num_classes, size, bias=False)
    return [*parts, Part("head", num_classes, 1, head)]


def arch_cost(arch: ShuffleArch, *, num_classes: int, in_channels: int) -> Cost:
    """Exact fvcore flops / numel params / fvcore activations of ``build(arch, ...)``."""
    return total_cost(part_costs(arch, num_classes=num_classes, in_channels=in_channels))
