"""The arithmetic of compound scaling (EfficientNet, Tan & Le 2019): coefficients, scaled
architectures and FLOPs-matched single-dimension baselines, all on the exact analytic cost.

Pure functions of an ``EfficientNetArch``: no training, no storage. ``designs.scaling`` is the
driver that trains and compares what these return.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from jointnas.spaces.nets.efficientnet import EfficientNetArch, arch_cost

RULES = ("compound", "depth", "width", "resolution")


@dataclass(frozen=True)
class Coefficients:
    """Depth (alpha), width (beta) and resolution (gamma) bases of compound scaling."""

    alpha: float
    beta: float
    gamma: float

    @property
    def product(self) -> float:
        """alpha * beta^2 * gamma^2: the nominal FLOPs factor per unit of phi."""
        return self.alpha * self.beta**2 * self.gamma**2


def derive_gamma(
    alpha: float, beta: float, *, flops_ratio: float = 2.0, gamma_step: float | None = 0.05
) -> float:
    """gamma with alpha * beta^2 * gamma^2 = ``flops_ratio``, rounded to ``gamma_step``."""
    gamma = math.sqrt(flops_ratio / (alpha * beta**2))
    return round(round(gamma / gamma_step) * gamma_step, 6) if gamma_step else gamma


def scale_arch(
    arch: EfficientNetArch, *, depth: float = 1.0, width: float = 1.0, resolution: float = 1.0
) -> EfficientNetArch:
    """``arch`` with its depth and width multipliers and its resolution multiplied; widths and
    depths then follow by the reference rounding when the network is built or costed."""
    return dataclasses.replace(
        arch,
        depth_mult=round(arch.depth_mult * depth, 6),
        width_mult=round(arch.width_mult * width, 6),
        resolution=max(1, round(arch.resolution * resolution)),
    )


def compound(arch: EfficientNetArch, phi: float, c: Coefficients) -> EfficientNetArch:
    """The compound-scaled ``arch``: (alpha, beta, gamma)^phi on depth, width, resolution."""
    return scale_arch(arch, depth=c.alpha**phi, width=c.beta**phi, resolution=c.gamma**phi)


def match_flops(
    arch: EfficientNetArch, rule: str, target: int, *, num_classes: int, in_channels: int
) -> tuple[float, EfficientNetArch]:
    """The coefficient >= 1 of single-dimension ``rule`` whose realised FLOPs are nearest to
    ``target``, and its architecture. FLOPs are monotone in each multiplier but stepwise (the
    rounding), so bisection brackets the step that crosses the target and the nearer side wins."""
    if rule not in RULES[1:]:
        raise ValueError(f"unknown single-dimension rule {rule!r}; choose one of {RULES[1:]}")
    task = {"num_classes": num_classes, "in_channels": in_channels}

    def flops(c: float) -> int:
        return arch_cost(scale_arch(arch, **{rule: c}), **task).flops

    lo, hi = 1.0, 2.0
    if flops(lo) >= target:
        return lo, arch
    for _ in range(30):
        if flops(hi) >= target:
            break
        lo, hi = hi, hi * 2
    else:
        raise ValueError(f"{rule}-only scaling reaches no {target} FLOPs below a factor {hi:g}")
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if flops(mid) >= target else (mid, hi)
    best = min((lo, hi), key=lambda c: abs(flops(c) - target))
    return best, scale_arch(arch, **{rule: best})
