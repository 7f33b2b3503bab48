"""The AnyNetX-A..E spaces: pycls's compatibility rule by hand, blocks == fvcore / numel (random
candidates: the space contract suite, ``test_space_contract.py``), the vectorised twin, each
design's constraint on many samples, round trips, describe, and a full tiny run() on every
design."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import IMAGENET, SMALL, assert_batch_equals_scalar, tiny_run

from jointnas.spaces import get_space, registered
from jointnas.spaces.anynet import DESIGNS, AnyNetSpace
from jointnas.spaces.nets.anynet import Bottleneck, adjust_block_compatibility
from jointnas.spaces.nets.model import build_model
from jointnas.testing import fvcore_cost
from jointnas.testing.spaces import check_cost
from jointnas.tools.describe import describe_params

pytestmark = pytest.mark.usefixtures("one_torch_thread")
NAMES = [f"anynetx-{d}" for d in DESIGNS]


# --------------------------------------------------------------------------- reference rule


def test_adjust_block_compatibility_by_hand() -> None:
    """Hand-computed with pycls's ``adjust_block_compatibility`` (Python ``round``: half to
    even): v = int(max(1, w*b)); g = min(g, v); m = lcm(g, b) if b > 1 else g;
    v = max(m, round(v / m) * m); w = int(v / b)."""
    cases = [
        # (w, b, g) -> (w, g)
        ((100, 0.25, 16), (128, 16)),  # v = 25 -> round(1.5625) = 2 groups of 16 -> 32 / 0.25
        ((8, 0.25, 32), (8, 2)),  # v = 2: the group width is clipped to the bottleneck width
        ((20, 2.0, 6), (21, 6)),  # b = 2: multiple of lcm(6, 2) = 6: 40 -> 42 -> 21
        ((40, 1.0, 16), (32, 16)),  # 2.5 groups: half to even -> 2
        ((56, 1.0, 16), (64, 16)),  # 3.5 groups -> 4
        ((24, 1.0, 16), (32, 16)),  # RegNetX-400MF's first stage: 1.5 -> 2
        ((392, 1.0, 16), (384, 16)),  # and its last: 24.5 -> 24
        ((3, 0.25, 8), (4, 1)),  # w*b < 1 is raised to 1
    ]
    ws, bs, gs = zip(*(c for c, _ in cases), strict=True)
    got_w, got_b, got_g = adjust_block_compatibility(ws, bs, gs)
    assert list(zip(got_w.tolist(), got_g.tolist(), strict=True)) == [e for _, e in cases]
    assert got_b.tolist() == list(bs)
    assert all(int(w * b) % g == 0 for w, b, g in zip(got_w, got_b, got_g, strict=True))
    many = np.random.default_rng(0)  # arrays of any shape: one entry per stage
    w = many.integers(1, 64, (50, 3)) * 8
    b = many.choice([0.25, 0.5, 1.0], (50, 3))
    g = many.choice([1, 2, 4, 8, 16, 32], (50, 3))
    w2, b2, g2 = adjust_block_compatibility(w, b, g)
    assert w2.shape == (50, 3) and np.all(np.round(w2 * b2).astype(int) % g2 == 0)
    for bad in (([0], [1.0], [1]), ([8], [1.5], [1]), ([8], [1.0], [0])):
        with pytest.raises(ValueError):
            adjust_block_compatibility(*bad)


@pytest.mark.parametrize("se_ratio", [0.0, 0.25])
@pytest.mark.parametrize(
    ("w_in", "w_out", "stride", "bot_mul", "group_w", "size"),
    [
        (16, 16, 1, 1.0, 4, 9),
        (16, 32, 2, 0.5, 8, 11),
        (24, 24, 1, 0.25, 2, 7),
        (8, 40, 2, 1, 40, 8),
    ],
)
def test_bottleneck_equals_fvcore(w_in, w_out, stride, bot_mul, group_w, size, se_ratio) -> None:
    kw = {"stride": stride, "bot_mul": bot_mul, "group_w": group_w, "se_ratio": se_ratio}
    block = Bottleneck(w_in, w_out, **kw).eval()
    c = Bottleneck.cost(w_in, w_out, **kw, size=size)
    assert c == fvcore_cost(block, torch.zeros(1, w_in, size, size))
    if se_ratio:  # pycls: the squeeze is a quarter of the block *input* width
        assert block.se.reduce.out_channels == round(w_in * se_ratio)


# --------------------------------------------------------------------------- random candidates


def test_imagenet_layout_equals_fvcore_at_full_size() -> None:
    space = get_space("anynetx-e", layout="imagenet")
    assert space.default_task == IMAGENET and space.name == "anynetx-e-imagenet"
    rng = np.random.default_rng(7)
    arch = space.decode({**space.sample(rng), "s1_width": 32, "s1_depth": 1}).arch
    assert arch.resolution == 224 and len(arch.stages) == 4
    check_cost(space, arch, **IMAGENET)  # the contract suite counts this layout at 32 px


def test_the_y_block_space_is_named_for_it() -> None:
    anyy = get_space("anynetx-a", se=True)  # X + SE; the contract suite counts it
    assert anyy.name == "anynety-a" and anyy.decode(anyy.smallest_params()).arch.se_ratio == 0.25


@pytest.mark.parametrize("name", NAMES)
def test_cost_batch_equals_scalar_cost(name: str) -> None:
    space = get_space(name)
    assert space.vectorised_cost
    rng = np.random.default_rng(3)
    samples = [space.sample(rng) for _ in range(1000)]
    samples += [space.smallest_params(), space.largest_params()]
    assert_batch_equals_scalar(space, samples, SMALL)
    pinned = get_space(name, se=True, fix={"s1_depth": 2})
    rows = [pinned.sample(rng) for _ in range(200)]
    got = pinned.cost_batch(pinned.encode(rows), **SMALL).flops
    assert got.tolist() == [pinned.cost(pinned.decode(p).arch, **SMALL).flops for p in rows]


# --------------------------------------------------------------------------- the designs


@pytest.mark.parametrize("name", NAMES)
def test_every_sample_satisfies_its_design(name: str) -> None:
    """B shares b, C also g, D has non-decreasing widths, E also depths: as searched and as
    built (the compatibility rule is monotone in w for one b and g, so D/E survive it; a shared
    g is only clipped, per stage, to a bottleneck narrower than it, as in pycls)."""
    space = get_space(name)
    design = DESIGNS[name[-1]]
    lay = space.layout
    rng = np.random.default_rng(11)
    seen_free = dict.fromkeys(("b", "g", "w", "d"), False)
    for _ in range(2000):
        arch = space.decode(space.sample(rng)).arch
        built = arch.stages
        assert [s.bot_mul for s in built] == list(arch.bot_muls)
        for s, w, b, g in zip(built, arch.widths, arch.bot_muls, arch.group_ws, strict=True):
            assert s.group_w == min(g, max(1, int(w * b)))
        for values, shared, key in (
            (arch.bot_muls, design.shared_bot_mul, "b"),
            (arch.group_ws, design.shared_group_w, "g"),
        ):
            if shared:
                assert len(set(values)) == 1, arch
            seen_free[key] |= len(set(values)) > 1
        for values, mono, key in (
            ((arch.widths, [s.width for s in built]), design.monotone_width, "w"),
            ((arch.depths, [s.depth for s in built]), design.monotone_depth, "d"),
        ):
            ordered = all(list(v) == sorted(v) for v in values)
            if mono:
                assert ordered, arch
            seen_free[key] |= not ordered
        assert all(lay.depth[0] <= d <= lay.depth[1] for d in arch.depths)
        assert all(lay.width[0] <= w <= lay.width[1] and w % 8 == 0 for w in arch.widths)
        assert all(int(s.width * s.bot_mul) % s.group_w == 0 for s in built)
    free = {
        "b": not design.shared_bot_mul,
        "g": not design.shared_group_w,
        "w": not design.monotone_width,
        "d": not design.monotone_depth,
    }
    assert seen_free == free  # and a free quantity is not accidentally constrained


def test_spaces_listed_and_named() -> None:
    names = registered()
    assert set(NAMES) <= set(names)
    assert "non-decreasing depths" in names["anynetx-e"].summary
    sizes = {n: len(get_space(n).distributions) for n in NAMES}
    assert sizes == {
        "anynetx-a": 12 + 9,
        "anynetx-b": 10 + 9,
        "anynetx-c": 8 + 9,
        "anynetx-d": 8 + 9,
        "anynetx-e": 8 + 9,
    }  # 3 stages x (d, w[, b, g]) + shared b, g; 9 recipe axes


# --------------------------------------------------------------------------- params, options


@pytest.mark.parametrize("name", ["anynetx-a", "anynetx-e"])
def test_round_trips_and_errors(name: str) -> None:
    space = get_space(name)
    rng = np.random.default_rng(0)
    for params in [space.sample(rng) for _ in range(300)]:
        cand = space.decode(params)
        back = space.to_params(cand)
        assert back == pytest.approx(params) and space.decode(back) == cand
    corners = [space.smallest_params(), space.largest_params()]
    decoded = space.decode_matrix(space.encode(corners))
    assert [space.decode(p).arch for p in decoded] == [space.decode(p).arch for p in corners]
    imagenet = get_space(name, layout="imagenet")
    big = imagenet.largest_params()  # another layout of the family: structure keys
    cand = imagenet.decode(big)
    assert space.to_params(cand) == {**big, "layout": "imagenet"}
    assert space.decode(space.to_params(cand)) == cand
    y = get_space(name, se=True)
    assert space.to_params(y.decode(y.smallest_params()))["se"] is True
    assert len({space.fingerprint(), imagenet.fingerprint(), y.fingerprint()}) == 3
    assert space.fingerprint() == AnyNetSpace(design=name[-1]).fingerprint()
    pinned = get_space(name, fix={"s1_depth": 2})
    assert "s1_depth" not in pinned.distributions and pinned.name == f"{name}-fixed"
    assert pinned.decode(pinned.sample(rng)).arch.depths[0] == 2
    with pytest.raises(ValueError, match="fixes it at 2"):
        pinned.to_params(space.decode({**space.smallest_params(), "s1_depth": 1}))
    for options, message in (
        ({"layout": "cifar"}, "unknown layout 'cifar'"),
        ({"se": "yes"}, "se must be true or false"),
        ({"fix": {"nope": 1}}, "nope"),
    ):
        with pytest.raises(ValueError, match=message):
            get_space(name, **options)
    with pytest.raises(ValueError, match="unknown layout"):
        space.decode({**space.smallest_params(), "layout": "huge"})


def test_describe_rows_add_up() -> None:
    space = get_space("anynetx-a")
    info = describe_params(space, space.largest_params(), **SMALL)
    assert [r["name"] for r in info["rows"]] == ["stem", "s1", "s2", "s3", "head"]
    for key in ("params", "acts"):
        assert sum(r[key] for r in info["rows"]) == info[key]
    assert sum(r["mflops"] for r in info["rows"]) == pytest.approx(info["mflops"])
    assert info["rows"][-2]["out"] == [128, 4, 4]  # 28 -> 14 -> 7 -> 4
    model = build_model(space.decode(space.largest_params()).arch, 10, 1)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


# --------------------------------------------------------------------------- pipeline


@pytest.mark.parametrize("name", NAMES)
def test_full_tiny_run_on_digits(tmp_path, digits, name: str) -> None:
    tiny_run(tmp_path, digits, name, max_mflops=1.0)
