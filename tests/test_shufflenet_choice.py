"""The SPOS choice-block space: every choice block and whole subnets equal fvcore / numel at
both layouts, the vectorised cost twin, round trips, the published presets through describe,
and a full tiny run() (coarse -> predictor -> fine -> final) on it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import (
    IMAGENET,
    SMALL,
    assert_batch_equals_scalar,
    assert_matches_fvcore,
    run_cli,
    tiny_run,
)

from jointnas.spaces import get_space
from jointnas.spaces.nets.shufflenet import CHOICES, ChoiceBlock, channel_shuffle
from jointnas.spaces.shufflenet_choice import SPOS_BEST, ShuffleChoiceSpace
from jointnas.testing import fvcore_cost

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("choice", range(len(CHOICES)))
def test_each_choice_block_equals_fvcore(choice: int, stride: int) -> None:
    cin, cout, size = (32, 32, 14) if stride == 1 else (24, 48, 14)
    block = ChoiceBlock(cin, cout, choice=choice, stride=stride).eval()
    x = torch.zeros(1, cin, size, size)
    analytic = ChoiceBlock.cost(cin, cout, choice=choice, stride=stride, size=size)
    assert analytic == fvcore_cost(block, x)
    assert block(x).shape == (1, cout, size // stride, size // stride)


def test_channel_shuffle_splits_interleaved_halves() -> None:
    x = torch.arange(8.0).view(1, 8, 1, 1)
    a, b = channel_shuffle(x)  # ShuffleNetV2's reference: even channels, odd channels
    assert a.flatten().tolist() == [0, 2, 4, 6] and b.flatten().tolist() == [1, 3, 5, 7]


@pytest.mark.parametrize("layout", ["small", "imagenet"])
def test_presets_and_random_subnets_equal_fvcore(layout: str) -> None:
    space = get_space("shufflenet-choice", layout=layout)
    task = SMALL if layout == "small" else IMAGENET
    rng = np.random.default_rng(0)
    samples = [space.sample(rng) for _ in range(2 if layout == "imagenet" else 4)]
    for params in [space.smallest_params(), space.largest_params(), *samples]:
        assert_matches_fvcore(space.decode(params).arch, task)


def test_spos_best_cost_and_cost_batch_twin() -> None:
    imagenet = get_space("shufflenet-choice", layout="imagenet")
    best = imagenet.decode(imagenet.named_candidates()["SPOS-best"]).arch
    assert best.choices == SPOS_BEST and len(best.choices) == 20
    c = imagenet.cost(best, **IMAGENET)
    assert (c.flops, c.params) == (331_617_984, 3_558_464)  # fvcore-equal (the test above)
    space = get_space("shufflenet-choice")
    rng = np.random.default_rng(1)
    assert_batch_equals_scalar(space, [space.sample(rng) for _ in range(64)], SMALL)
    flops = [space.cost(space.decode(space.sample(rng)).arch, **SMALL).mflops for _ in range(50)]
    low = space.cost(space.decode(space.smallest_params()).arch, **SMALL).mflops
    high = space.cost(space.decode(space.largest_params()).arch, **SMALL).mflops
    assert low <= min(flops) and max(flops) <= high and high > 1.3 * low


def test_round_trips_presets_and_errors() -> None:
    space = get_space("shufflenet-choice")
    assert space.name == "shufflenet-choice" and len(space.distributions) == 12
    assert space.recipe_names == ()
    rng = np.random.default_rng(0)
    for params in [space.sample(rng) for _ in range(100)]:
        cand = space.decode(params)
        assert cand.recipe is None and space.to_params(cand) == params
        assert space.decode(space.to_params(cand)) == cand
    for name, params in space.named_candidates().items():
        assert space.to_params(space.decode(params)) == params, name
    imagenet = ShuffleChoiceSpace(layout="imagenet")
    assert imagenet.decode(space.named_candidates()["SPOS-ImageNet"]).arch.choices == (0,) * 20
    assert space.fingerprint() != imagenet.fingerprint()
    with pytest.raises(ValueError, match="unknown layout 'cifar'"):
        get_space("shufflenet-choice", layout="cifar")
    with pytest.raises(ValueError, match="choice_01"):
        space.decode({**space.smallest_params(), "choice_01": 7})


@pytest.mark.parametrize("preset", ["SPOS-best", "SPOS-ImageNet"])
def test_describe_cli_shows_the_reference_subnets(tmp_path, preset: str) -> None:
    args = ("--space", "shufflenet-choice", "--preset", preset, "--num-classes", "1000")
    done = run_cli("describe", *args, "--in-channels", "3", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["resolution"] == 224 and len(info["rows"]) == 22
    assert sum(r["params"] for r in info["rows"]) == info["params"]
    want = list(SPOS_BEST) if preset == "SPOS-best" else [0] * 20
    assert info["arch"]["choices"] == want
    blocks = [r for r in info["rows"] if r["name"].startswith("layer")]
    assert all(r["block"].split()[0] in CHOICES for r in blocks)


def test_full_tiny_run_on_digits(tmp_path, digits) -> None:
    tiny_run(tmp_path, digits, "shufflenet-choice", max_mflops=7.0)
