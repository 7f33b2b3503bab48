"""The RegNet space: ``generate_regnet`` and the published models against pycls, analytic cost
== fvcore / numel on presets and random candidates, round trips, describe through the CLI, and a
full tiny run() on regnet and regnety (the --regnet-limits constraints: tests/test_reward.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import IMAGENET, SMALL, assert_matches_fvcore, run_cli, tiny_run

from jointnas.spaces import get_space
from jointnas.spaces.regnet import PUBLISHED, RegNetSpace, generate_regnet

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: stages of the published models after ``adjust_block_compatibility`` (pycls / timm):
#: (width, depth) per stage
BUILT = {
    "RegNetX-200MF": [(24, 1), (56, 1), (152, 4), (368, 7)],
    "RegNetX-400MF": [(32, 1), (64, 2), (160, 7), (384, 12)],
    "RegNetX-600MF": [(48, 1), (96, 3), (240, 5), (528, 7)],
    "RegNetY-200MF": [(24, 1), (56, 1), (152, 4), (368, 7)],
    "RegNetY-400MF": [(48, 1), (104, 3), (208, 6), (440, 6)],
}


def test_generate_regnet_by_hand() -> None:
    """pycls's quantised linear widths, worked by hand for RegNetX-400MF (w0 24, wa 24.48,
    wm 2.54, d 22): u_j = 24 + 24.48 j; k_j = round(log(u_j / 24) / log 2.54) is 0 for j = 0,
    1 for j = 1..2 (u < 24 * 2.54^1.5 = 97.2), 2 for j = 3..9 (u < 24 * 2.54^2.5 = 246.8) and 3
    after; widths 24 * 2.54^k rounded to multiples of 8: 24, 61.0 -> 64, 154.8 -> 152,
    393.3 -> 392. The compatibility rule then makes them 32, 64, 160, 384 (group width 16)."""
    assert generate_regnet(24.48, 24, 2.54, 22) == ([24, 64, 152, 392], [1, 2, 7, 12])
    assert generate_regnet(36.44, 24, 2.49, 13) == ([24, 56, 152, 368], [1, 1, 4, 7])
    assert generate_regnet(36.97, 48, 2.24, 16) == ([48, 104, 240, 536], [1, 3, 5, 7])
    assert generate_regnet(27.89, 48, 2.09, 16) == ([48, 104, 208, 440], [1, 3, 6, 6])
    assert generate_regnet(0.0, 32, 2.0, 5) == ([32], [5])  # wa = 0: one stage
    # u = 8, 16, 24, 32: k = 0, 1, round(log2 3) = 2, 2
    assert generate_regnet(8.0, 8, 2.0, 4, q=4) == ([8, 16, 32], [1, 1, 2])
    for bad in ((-1.0, 24, 2.0, 4), (8.0, 20, 2.0, 4), (8.0, 24, 1.0, 4), (8.0, 24, 2.0, 0)):
        with pytest.raises(ValueError, match="RegNet needs"):
            generate_regnet(*bad)


def test_presets_are_the_published_models_and_equal_fvcore() -> None:
    """Params and activations equal pycls's published counts exactly; flops sit 1-3% above
    them (fvcore counts BN and pooling, pycls does not; see ``Published``)."""
    space = get_space("regnet")
    named = space.named_candidates()
    assert set(PUBLISHED) == set(BUILT) <= set(named)
    for name, pub in PUBLISHED.items():
        cand = space.decode(named[name])
        arch = cand.arch
        assert [(s.width, s.depth) for s in arch.stages] == BUILT[name], name
        assert {s.group_w for s in arch.stages} == {pub.group_w}
        assert (arch.resolution, arch.stem_width, arch.stem_stride) == (224, 32, 2)
        assert bool(arch.se_ratio) == pub.se and all(s.stride == 2 for s in arch.stages)
        c = space.cost(arch, **IMAGENET)
        assert (c.params, c.acts) == (pub.params, pub.acts), name
        assert 1.0 < c.flops / pub.flops < 1.03, name
        assert_matches_fvcore(arch, IMAGENET)
        assert cand.recipe.optimizer == "sgd"
    regnety = get_space("regnety")  # the same presets, se key written where it differs
    assert "se" not in regnety.named_candidates()["RegNetY-400MF"]
    assert regnety.named_candidates()["RegNetX-200MF"]["se"] is False


@pytest.mark.parametrize("name", ["regnet", "regnety"])
def test_random_candidates_equal_fvcore_and_numel(name: str) -> None:
    space = get_space(name)
    assert not space.vectorised_cost  # the stage count follows from the widths
    rng = np.random.default_rng(5)
    samples = [space.sample(rng) for _ in range(6)]
    samples += [space.smallest_params(), space.largest_params()]
    stage_counts = set()
    for params in samples:
        arch = space.decode(params).arch
        stage_counts.add(len(arch.stages))
        assert_matches_fvcore(arch, SMALL)
    assert len(stage_counts) > 1
    imagenet = get_space(name, layout="imagenet")
    arch = imagenet.decode({**imagenet.sample(rng), "depth": 8, "w0": 24, "wa": 16.0}).arch
    assert_matches_fvcore(arch, IMAGENET)


def test_small_space_cost_range_and_shared_values() -> None:
    """RegNet shares b and g and its widths never decrease (an AnyNetX-D member); its depths
    may decrease from one stage to the next, so it is not inside AnyNetX-E here."""
    space = get_space("regnet")
    lo = space.cost(space.decode(space.smallest_params()).arch, **SMALL).mflops
    hi = space.cost(space.decode(space.largest_params()).arch, **SMALL).mflops
    assert 0.2 < lo < 0.3 and 30 < hi < 50
    rng = np.random.default_rng(1)
    flops, decreasing = [], 0
    for _ in range(500):
        arch = space.decode(space.sample(rng)).arch
        widths = [s.width for s in arch.stages]
        depths = [s.depth for s in arch.stages]
        assert widths == sorted(widths) and len({s.bot_mul for s in arch.stages}) == 1
        assert sum(depths) == arch.depth and 1 <= len(widths) <= arch.depth
        assert [s.stride for s in arch.stages] == [2, 2, 2, *[1] * 9][: len(widths)]
        decreasing += depths != sorted(depths)
        flops.append(space.cost(arch, **SMALL).mflops)
    assert lo <= min(flops) and max(flops) <= hi and 0 < decreasing < 500


def test_round_trips_presets_and_errors() -> None:
    space = get_space("regnet")
    assert space.name == "regnet" and get_space("regnety").name == "regnety"
    assert len(space.distributions) == 6 + 9
    rng = np.random.default_rng(0)
    for params in [space.sample(rng) for _ in range(300)]:
        cand = space.decode(params)
        back = space.to_params(cand)
        assert back == pytest.approx(params) and space.decode(back) == cand
    for name, params in space.named_candidates().items():  # presets keep their layout keys
        assert space.to_params(space.decode(params)) == params, name
    imagenet = get_space("regnet", layout="imagenet")
    x200 = space.named_candidates()["RegNetX-200MF"]
    assert imagenet.decode(x200) == space.decode(x200)
    assert len({space.fingerprint(), imagenet.fingerprint(), get_space("regnety").fingerprint()})
    assert space.fingerprint() == RegNetSpace().fingerprint()
    pinned = get_space("regnet", fix={"depth": 6, "group_w": 8})
    assert set(pinned.distributions) == set(space.distributions) - {"depth", "group_w"}
    arch = pinned.decode(pinned.sample(rng)).arch
    assert arch.depth == 6 and arch.group_w == 8
    with pytest.raises(ValueError, match="fixes it at 6"):
        pinned.to_params(space.decode({**space.smallest_params(), "depth": 7}))
    with pytest.raises(ValueError, match="unknown layout 'cifar'"):
        get_space("regnet", layout="cifar")
    with pytest.raises(ValueError, match="'w0'"):
        space.decode({**space.smallest_params(), "w0": 12})


def test_describe_cli_shows_regnetx_200mf(tmp_path) -> None:
    args = ("--space", "regnet", "--preset", "RegNetX-200MF")
    task = ("--num-classes", "1000", "--in-channels", "3")
    done = run_cli("describe", *args, *task, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert (info["params"], info["acts"]) == (2_684_792, 2_164_056)
    assert info["mflops"] == pytest.approx(203.384016) and info["resolution"] == 224
    assert [r["name"] for r in info["rows"]] == ["stem", "s1", "s2", "s3", "s4", "head"]
    assert sum(r["params"] for r in info["rows"]) == info["params"]
    missing = run_cli("describe", "--space", "regnet", "--preset", "RegNetX-8GF", cwd=tmp_path)
    assert missing.returncode != 0 and "has no preset 'RegNetX-8GF'" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["regnet", "regnety"])
def test_full_tiny_run_on_digits(tmp_path, digits, name: str) -> None:
    tiny_run(tmp_path, digits, name, max_mflops=1.0)
