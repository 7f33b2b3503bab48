"""Network blocks, each with its analytic cost beside it (as pycls does with ``complexity``).

Cost conventions are fvcore's defaults for a model in eval mode, so the analytic numbers equal
``fvcore.nn.FlopCountAnalysis(model.eval(), x).total()`` exactly:

* FLOPs: one multiply-add = one FLOP; convolution/linear count weights x outputs (no bias);
  eval BatchNorm counts 2 per element; adaptive average pooling counts 1 per input element;
  activations, adds and multiplies are free.
* params: every learnable tensor (``sum(p.numel())``).
* acts: output elements of every convolution and linear layer (fvcore's ActivationCountAnalysis).

Each ``cost`` takes plain ints or integer numpy arrays (one entry per candidate) with the same
integer arithmetic, so the scalar path and the vectorised population path share these formulas.
Every network module names its twins alike: ``part_costs(arch)`` lists its ``Part`` s (stem,
stages or layers, head), ``arch_cost(arch)`` is their ``total_cost``, ``batch_cost`` the
vectorised twin over a population.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

Int = Any  # an int, or an integer numpy array of per-candidate values


@dataclass(frozen=True)
class Cost:
    """FLOPs (multiply-adds), parameters and activations; ints or per-candidate arrays."""

    flops: Int
    params: Int
    acts: Int

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.flops + other.flops, self.params + other.params, self.acts + other.acts)

    def masked(self, keep: Int) -> Cost:
        """This cost where ``keep`` is true, else zero (vectorised depth masking)."""
        return Cost(self.flops * keep, self.params * keep, self.acts * keep)

    @property
    def mflops(self) -> Any:
        return self.flops / 1e6


ZERO = Cost(0, 0, 0)

_ACT = {"relu": nn.ReLU, "hswish": nn.Hardswish, "swish": nn.SiLU}


def activation(name: str | None) -> nn.Module:
    if name is None:
        return nn.Identity()
    if name not in _ACT:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(_ACT)}")
    return _ACT[name](inplace=True)


def out_size(size: Int, stride: int) -> Int:
    """Spatial size after a 'same'-padded (odd kernel, padding k // 2) conv with this stride."""
    return (size - 1) // stride + 1


def se_channels(channels: Int) -> Int:
    """Squeeze width: a quarter of the expanded channels, rounded to a multiple of 8, >= 8."""
    mid = (channels + 16) // 32 * 8
    return mid + (mid < 8) * (8 - mid)


class ConvBNAct(nn.Sequential):
    """k x k convolution (no bias) + BatchNorm + optional activation."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        act: str | None = "relu",
    ) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            activation(act),
        )

    @staticmethod
    def cost(cin: Int, cout: Int, kernel: Int, stride: int, size: Int, groups: Int = 1) -> Cost:
        out = out_size(size, stride)
        weights = cout * (cin // groups) * kernel * kernel
        elems = out * out * cout
        return Cost(flops=weights * out * out + 2 * elems, params=weights + 2 * cout, acts=elems)


_GATES = {"sigmoid": torch.sigmoid, "hardsigmoid": F.hardsigmoid}


class SqueezeExcite(nn.Module):
    """Channel attention: pool, 1x1 squeeze + ``act``, 1x1 excite, ``gate``, rescale.

    The one squeeze-excite of every space: FBNetV3's (MobileNetV3: ReLU, hard-sigmoid, squeezed
    to ``se_channels`` of the expanded width), EfficientNet's (swish, sigmoid, a quarter of the
    block *input*) and RegNetY's (ReLU, sigmoid, a quarter of the block input) differ only in
    the squeezed width and the two nonlinearities, so they share one module and one cost.
    """

    def __init__(
        self, channels: int, squeezed: int, *, act: str = "relu", gate: str = "sigmoid"
    ) -> None:
        super().__init__()
        if gate not in _GATES:
            raise ValueError(f"unknown gate {gate!r}; choose one of {sorted(_GATES)}")
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.act = activation(act)
        self.expand = nn.Conv2d(squeezed, channels, 1)
        self.gate = gate  # a name, not a module: the gate has no weights to save

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.expand(self.act(self.reduce(F.adaptive_avg_pool2d(x, 1))))
        return x * _GATES[self.gate](s)

    @staticmethod
    def cost(channels: Int, squeezed: Int, size: Int) -> Cost:
        """fvcore: the pool reads every input element once; the 1x1 convs' biases are free
        flops but are parameters; the gate and the rescale are free."""
        return Cost(
            flops=size * size * channels + 2 * channels * squeezed,
            params=2 * channels * squeezed + squeezed + channels,
            acts=squeezed + channels,
        )


class DropPath(nn.Module):
    """Stochastic depth: drop the residual branch per sample during training.

    ``depth_scale`` in [0, 1] is this block's position in the network; the trainer sets
    ``p = recipe.drop_path * depth_scale`` (the linear rule of the stochastic-depth paper).
    """

    def __init__(self, depth_scale: float) -> None:
        super().__init__()
        self.depth_scale = depth_scale
        self.p = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class InvertedResidual(nn.Module):
    """MBConv: 1x1 expand (skipped at expansion 1), k x k depthwise, optional SE, 1x1 project;
    identity shortcut with drop path when shapes allow."""

    def __init__(
        self,
        cin: int,
        cout: int,
        *,
        kernel: int,
        stride: int,
        expansion: int,
        se: bool,
        act: str,
        depth_scale: float = 0.0,
    ) -> None:
        super().__init__()
        mid = cin * expansion
        self.expand = ConvBNAct(cin, mid, 1, act=act) if expansion != 1 else nn.Identity()
        self.depthwise = ConvBNAct(mid, mid, kernel, stride, groups=mid, act=act)
        self.se = SqueezeExcite(mid, se_channels(mid), gate="hardsigmoid") if se else nn.Identity()
        self.project = ConvBNAct(mid, cout, 1, act=None)
        self.residual = stride == 1 and cin == cout
        self.drop_path = DropPath(depth_scale) if self.residual else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + self.drop_path(y) if self.residual else y

    @staticmethod
    def cost(
        cin: Int, cout: Int, *, kernel: Int, stride: int, expansion: Int, se: bool, size: Int
    ) -> Cost:
        mid = cin * expansion
        total = ConvBNAct.cost(cin, mid, 1, 1, size).masked(expansion != 1)
        total = total + ConvBNAct.cost(mid, mid, kernel, stride, size, groups=mid)
        out = out_size(size, stride)
        if se:
            total = total + SqueezeExcite.cost(mid, se_channels(mid), out)
        return total + ConvBNAct.cost(mid, cout, 1, 1, out)


class Head(nn.Module):
    """The classification head of every space: an optional 1x1 conv to ``width`` (None: no
    conv, pycls's AnyNet head), global average pool, dropout (the recipe's), linear classifier
    (``bias=False``: SPOS's bias-free fc)."""

    def __init__(
        self,
        cin: int,
        width: int | None,
        num_classes: int,
        act: str | None = "relu",
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Identity() if width is None else ConvBNAct(cin, width, 1, act=act)
        self.dropout = nn.Dropout(0.0)
        self.fc = nn.Linear(cin if width is None else width, num_classes, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(F.adaptive_avg_pool2d(self.conv(x), 1).flatten(1)))

    @staticmethod
    def cost(
        cin: Int, width: Int | None, num_classes: int, size: Int, *, bias: bool = True
    ) -> Cost:
        features = cin if width is None else width
        fc = features * num_classes
        pool = Cost(
            flops=size * size * features + fc,
            params=fc + num_classes * bias,
            acts=num_classes,
        )
        return pool if width is None else ConvBNAct.cost(cin, width, 1, 1, size) + pool


class Part(NamedTuple):
    """One part of a network (stem, a stage or layer, the head) as ``part_costs`` lists it:
    the rows of ``jointnas describe`` and, summed by ``total_cost``, the network's cost."""

    name: str
    channels: Int  # output channels (the class count for the head)
    size: Int  # output height = width (1 for the head)
    cost: Cost


def total_cost(parts: Iterable[Part]) -> Cost:
    """The sum of the parts' costs as plain ints (the scalar ``arch_cost`` of every network)."""
    total = ZERO
    for part in parts:
        total = total + part.cost
    return Cost(int(total.flops), int(total.params), int(total.acts))
