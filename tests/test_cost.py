"""Tests for jointnas.spaces.nets.cost: analytic cost == fvcore's count of each block and of
the corners (random candidates: the space contract suite, ``test_space_contract.py``); the
vectorised path == the scalar path; hand-checked values and monotonicity."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import assert_batch_equals_scalar

from jointnas.spaces.fbnetv3 import FBNetV3Space
from jointnas.spaces.nets.blocks import (
    ConvBNAct,
    Cost,
    Head,
    InvertedResidual,
    SqueezeExcite,
    se_channels,
)
from jointnas.spaces.nets.cost import cost, cost_batch
from jointnas.testing import fvcore_cost
from jointnas.testing.spaces import check_cost

ARGS = {
    "small": {"num_classes": 10, "in_channels": 1},
    "imagenet": {"num_classes": 1000, "in_channels": 3},
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _samples(space: FBNetV3Space, n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def _check_random_against_fvcore(preset: str, n: int, seed: int) -> None:
    space = FBNetV3Space(preset=preset)
    samples = _samples(space, n, seed)
    # the draw includes both kernels, SE and non-SE stages, with and without residuals
    assert len({p["s2_kernel"] for p in samples}) == 2
    for params in samples:
        check_cost(space, space.decode(params).arch, **ARGS[preset])


# --------------------------------------------------------------------------- vs fvcore


@pytest.mark.slow
@pytest.mark.parametrize(("preset", "seed"), [("small", 100), ("imagenet", 201)])
def test_many_random_candidates_equal_fvcore_and_numel(preset: str, seed: int) -> None:
    # the contract suite checks a few per space by default; tracing an ImageNet-size model
    # costs ~2-6 s on 2 CPU cores, so 50 full-size ones only when slow tests run
    _check_random_against_fvcore(preset, 50, seed=seed)


@pytest.mark.parametrize("preset", ["small", "imagenet"])
def test_corners_equal_fvcore_at_full_size(preset: str) -> None:
    space = FBNetV3Space(preset=preset)
    for params in (space.smallest_params(), space.largest_params()):
        check_cost(space, space.decode(params).arch, **ARGS[preset])


def test_cost_other_num_classes_and_channels() -> None:
    space = FBNetV3Space(preset="small")
    arch = space.decode(_samples(space, 1, seed=5)[0]).arch
    check_cost(space, arch, num_classes=2, in_channels=3)
    base = cost(arch, num_classes=10, in_channels=1)
    more = cost(arch, num_classes=11, in_channels=1)
    head_width = arch.head_width
    assert more.params - base.params == head_width + 1  # one more row of fc weights + bias
    assert more.flops - base.flops == head_width
    assert more.acts - base.acts == 1


def test_block_costs_equal_fvcore() -> None:
    cases = [
        (ConvBNAct(3, 16, 3, 2), ConvBNAct.cost(3, 16, 3, 2, 15), (3, 15)),
        (ConvBNAct(24, 24, 5, 1, groups=24), ConvBNAct.cost(24, 24, 5, 1, 9, groups=24), (24, 9)),
        (
            SqueezeExcite(40, se_channels(40), gate="hardsigmoid"),
            SqueezeExcite.cost(40, se_channels(40), 7),
            (40, 7),
        ),
        (
            InvertedResidual(16, 24, kernel=5, stride=2, expansion=4, se=True, act="hswish"),
            InvertedResidual.cost(16, 24, kernel=5, stride=2, expansion=4, se=True, size=13),
            (16, 13),
        ),
        (
            InvertedResidual(24, 24, kernel=3, stride=1, expansion=1, se=False, act="relu"),
            InvertedResidual.cost(24, 24, kernel=3, stride=1, expansion=1, se=False, size=8),
            (24, 8),
        ),
        (Head(40, 256, 10, "hswish"), Head.cost(40, 256, 10, 4), (40, 4)),
        (Head(40, None, 10), Head.cost(40, None, 10, 4), (40, 4)),  # pycls: no 1x1 conv
        (Head(40, 64, 7, bias=False), Head.cost(40, 64, 7, 5, bias=False), (40, 5)),  # SPOS
    ]
    for module, expected, (c, size) in cases:
        assert expected == fvcore_cost(module, torch.zeros(1, c, size, size)), module
    # squeeze width: a quarter of the channels, rounded to a multiple of 8, at least 8
    assert [se_channels(c) for c in (8, 16, 32, 48, 96, 144, 1000)] == [8, 8, 8, 16, 24, 40, 248]


# --------------------------------------------------------------------------- vectorised


@pytest.mark.parametrize("preset", ["small", "imagenet"])
def test_cost_batch_equals_scalar_cost(preset: str) -> None:
    space = FBNetV3Space(preset=preset)
    args = ARGS[preset]
    samples = [*_samples(space, 2000, seed=300), space.smallest_params(), space.largest_params()]
    assert_batch_equals_scalar(space, samples, args)


def test_cost_batch_single_row_and_bad_shape() -> None:
    space = FBNetV3Space(preset="small")
    smallest = space.smallest_params()
    one = cost_batch(space, space.encode([smallest]), num_classes=10, in_channels=1)
    assert (one.flops.tolist(), one.params.tolist(), one.acts.tolist()) == (
        [112_000],
        [21_874],
        [5_490],
    )
    with pytest.raises(ValueError, match="columns"):
        cost_batch(space, np.zeros((3, 4)), num_classes=10, in_channels=1)


# --------------------------------------------------------------------------- values, monotone


def test_smallest_candidate_cost_by_hand() -> None:
    """Small preset, 16x16 grey input, 10 classes, everything at its low end.

    Per part (flops / params / acts), from the conventions in ``jointnas.spaces.nets.blocks``:
    stem 3x3/2 1->8 at 8x8: 5632 / 88 / 512; s1 (dw 8 + project 8->8, 8x8): 10752 / 168 / 1024;
    s2 (expand 8->16, dw/2, project 16->16): 17664 / 624 / 1536;
    s3 (expand 16->32, dw/2, SE 32->8, project 32->24): 14528 / 2296 / 776;
    s4 (expand 24->48, dw, SE 48->16, project 48->40): 16832 / 5376 / 608;
    head (1x1 40->256 at 2x2, pool, fc 256->10): 46592 / 13322 / 1034.
    """
    space = FBNetV3Space(preset="small")
    arch = space.decode(space.smallest_params()).arch
    got = cost(arch, num_classes=10, in_channels=1)
    assert got == Cost(flops=112_000, params=21_874, acts=5_490)
    assert got.mflops == pytest.approx(0.112)
    imagenet = FBNetV3Space(preset="imagenet")
    got = cost(imagenet.decode(imagenet.smallest_params()).arch, num_classes=1000, in_channels=3)
    assert got == Cost(flops=130_483_040, params=4_166_336, acts=2_588_240)


def _cost_of(space: FBNetV3Space, **changes: object) -> Cost:
    params = {**space.smallest_params(), **changes}
    return cost(space.decode(params).arch, num_classes=10, in_channels=1)


def test_cost_is_monotone_in_width_depth_expansion_resolution_kernel() -> None:
    space = FBNetV3Space(preset="small")
    d = space.distributions
    base = _cost_of(space)

    def strictly_more(c: Cost, flops: bool = True, params: bool = True, acts: bool = True) -> None:
        assert (c.flops > base.flops) if flops else (c.flops == base.flops)
        assert (c.params > base.params) if params else (c.params == base.params)
        assert (c.acts > base.acts) if acts else (c.acts == base.acts)

    # each knob alone: wider / deeper / more expansion grow all three counts
    for name in (
        "stem_width",
        "s1_width",
        "s2_width",
        "s3_width",
        "s4_width",
        "s2_depth",
        "s3_depth",
        "s4_depth",
        "s2_expansion",
        "s4_expansion",
    ):
        strictly_more(_cost_of(space, **{name: d[name].high}))
    # resolution changes flops and acts, never params; a larger kernel never changes acts
    strictly_more(_cost_of(space, resolution=d["resolution"].high), params=False)
    strictly_more(_cost_of(space, s3_kernel=5), acts=False)
    # ladders along one knob are strictly increasing in flops
    for name in ("resolution", "s3_width", "s3_depth", "s3_expansion"):
        dist = d[name]
        ladder = [
            _cost_of(space, **{name: v}).flops for v in range(dist.low, dist.high + 1, dist.step)
        ]
        assert ladder == sorted(ladder) and len(set(ladder)) == len(ladder), name
    # growing everything at once is the most expensive corner
    top = cost(space.decode(space.largest_params()).arch, num_classes=10, in_channels=1)
    strictly_more(top)
    # recipe values never change the cost
    assert _cost_of(space, optimizer="adamw", lr=0.5, dropout=0.3, ema=True) == base


def test_one_more_block_costs_exactly_one_block() -> None:
    space = FBNetV3Space(preset="small")
    arch = space.decode(space.smallest_params()).arch
    deeper = replace(arch, stages=(*arch.stages[:3], replace(arch.stages[3], depth=2)))
    extra = cost(deeper, num_classes=10, in_channels=1) + Cost(0, 0, 0)
    s4 = arch.stages[3]
    block = InvertedResidual.cost(
        s4.width, s4.width, kernel=s4.kernel, stride=1, expansion=s4.expansion, se=s4.se, size=2
    )
    assert extra == cost(arch, num_classes=10, in_channels=1) + block


def test_cost_of_unknown_arch_type_raises() -> None:
    with pytest.raises(TypeError, match="no cost model registered for dict"):
        cost({}, num_classes=10, in_channels=1)
