"""The `efficientnet` space: reference rounding, B0..B3 against the published models (and fvcore
at full size), blocks == fvcore / numel, the vectorised twin, round trips, describe, and a full
tiny run(). Random candidates against fvcore: the space contract suite
(``test_space_contract.py``)."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
import torch
from helpers import assert_batch_equals_scalar, run_cli

import jointnas.spaces.efficientnet  # noqa: F401 (registers the space)
from jointnas.runs.pipeline import RunConfig, run
from jointnas.spaces import get_space
from jointnas.spaces.efficientnet import PUBLISHED, EfficientNetSpace
from jointnas.spaces.nets.blocks import DropPath, SqueezeExcite
from jointnas.spaces.nets.efficientnet import MBConv, round_filters, round_repeats
from jointnas.spaces.nets.model import build_model
from jointnas.testing import fvcore_cost
from jointnas.testing.spaces import check_cost
from jointnas.tools.describe import describe_params

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SMALL = {"num_classes": 10, "in_channels": 1}
IMAGENET = {"num_classes": 1000, "in_channels": 3}


# --------------------------------------------------------------------------- reference rules


def test_round_filters_and_round_repeats_by_hand() -> None:
    # B2 (width 1.1) and B3 (1.2) channels of timm / the TF reference: stem, 7 stages, head
    base = (32, 16, 24, 40, 80, 112, 192, 320, 1280)
    assert [round_filters(c, 1.1) for c in base] == [32, 16, 24, 48, 88, 120, 208, 352, 1408]
    assert [round_filters(c, 1.2) for c in base] == [40, 24, 32, 48, 96, 136, 232, 384, 1536]
    # the 10% rule: 40 * 0.25 = 10 rounds to 8, which is < 9, so one divisor more
    assert round_filters(40, 0.25) == 16 and round_filters(40, 0.25, divisor=4) == 12
    assert round_filters(16, 0.25) == 8  # never below the divisor (min_depth)
    assert round_filters(16, 0.25, divisor=4) == 4 and round_filters(16, 0.25, 4, 8) == 8
    assert round_filters(80, 0.55) == 48  # 44 is a tie: int(44 + 4) // 8 * 8
    assert round_filters(24, 0) == 24  # no multiplier: unchanged
    repeats = (1, 2, 2, 3, 3, 4, 1)
    assert [round_repeats(r, 1.1) for r in repeats] == [2, 3, 3, 4, 4, 5, 2]  # B1: 23 blocks
    assert [round_repeats(r, 1.4) for r in repeats] == [2, 3, 3, 5, 5, 6, 2]  # B3: 26 blocks
    assert [round_repeats(r, 0.2) for r in repeats] == [1] * 7


def test_blocks_equal_fvcore_and_follow_b0() -> None:
    """SE of a quarter of the block *input* (not the expanded width), swish, sigmoid gate."""
    block = MBConv(24, 24, kernel=5, stride=1, expansion=6, act="swish").eval()
    assert isinstance(block.se, SqueezeExcite) and block.se.reduce.out_channels == 6
    assert block.se.reduce.in_channels == 144 and isinstance(block.se.act, torch.nn.SiLU)
    assert block.residual and isinstance(block.drop_path, DropPath)
    for module, expected, (c, size) in (
        (block, MBConv.cost(24, 24, kernel=5, stride=1, expansion=6, size=7), (24, 7)),
        (
            MBConv(32, 16, kernel=3, stride=1, expansion=1, act="swish"),
            MBConv.cost(32, 16, kernel=3, stride=1, expansion=1, size=9),
            (32, 9),
        ),
        (
            MBConv(16, 24, kernel=3, stride=2, expansion=6, act="swish"),
            MBConv.cost(16, 24, kernel=3, stride=2, expansion=6, size=11),
            (16, 11),
        ),
    ):
        assert expected == fvcore_cost(module, torch.zeros(1, c, size, size))


# --------------------------------------------------------------------------- presets


def test_presets_are_the_published_models_and_equal_fvcore() -> None:
    """B0..B3 at 224/240/260/300 px, 1000 classes: timm's widths, depths and parameter
    counts (efficientnet_b0..b3: 5,288,548 / 7,794,184 / 9,109,994 / 12,233,232)."""
    space = get_space("efficientnet")
    named = space.named_candidates()
    expected = {
        "EfficientNet-B0": (32, (16, 24, 40, 80, 112, 192, 320), 1280, 16, 5_288_548, 401.66),
        "EfficientNet-B1": (32, (16, 24, 40, 80, 112, 192, 320), 1280, 23, 7_794_184, 712.73),
        "EfficientNet-B2": (32, (16, 24, 48, 88, 120, 208, 352), 1408, 23, 9_109_994, 1026.58),
        "EfficientNet-B3": (40, (24, 32, 48, 96, 136, 232, 384), 1536, 26, 12_233_232, 1883.90),
    }
    assert set(PUBLISHED) == set(expected) <= set(named)
    for name, (stem, widths, head, blocks, params, mflops) in expected.items():
        cand = space.decode(named[name])
        arch = cand.arch
        assert arch.resolution == PUBLISHED[name][2] and arch.divisor == 8
        assert (arch.stem_width, arch.widths, arch.head_width) == (stem, widths, head)
        assert sum(arch.depths) == blocks and arch.stem_stride == 2
        assert [st.stride for st in arch.stages] == [1, 2, 2, 2, 1, 2, 1]
        assert cand.recipe.dropout == PUBLISHED[name][3] and cand.recipe.optimizer == "rmsprop"
        c = check_cost(space, arch, **IMAGENET)  # == fvcore / numel at the published size
        assert c.params == params and c.mflops == pytest.approx(mflops, abs=0.01)


def test_describe_cli_shows_b0(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("JOINTNAS_SPACES", "jointnas.spaces.efficientnet")
    args = ("--space", "efficientnet", "--preset", "EfficientNet-B0")
    task = ("--num-classes", "1000", "--in-channels", "3")
    done = run_cli("describe", *args, *task, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["params"] == 5_288_548 and info["mflops"] == pytest.approx(401.659392)
    assert info["resolution"] == 224 and info["rows"][0]["name"] == "stem"
    assert sum(r["params"] for r in info["rows"]) == info["params"]
    assert sum(r["acts"] for r in info["rows"]) == info["acts"]
    assert sum(r["mflops"] for r in info["rows"]) == pytest.approx(info["mflops"])


# --------------------------------------------------------------------------- random candidates


@pytest.mark.parametrize(
    ("options", "task"),
    [({}, SMALL), ({"divisor": 4}, SMALL), ({"layout": "imagenet"}, IMAGENET)],
)
def test_cost_batch_equals_scalar_cost(options: dict, task: dict) -> None:
    space = get_space("efficientnet", **options)
    assert space.vectorised_cost
    rng = np.random.default_rng(3)
    samples = [space.sample(rng) for _ in range(1000)]
    samples += [space.smallest_params(), space.largest_params()]
    assert_batch_equals_scalar(space, samples, task)
    fix = {"width_mult": space.distributions["width_mult"].low, "s3_kernel": 5}
    pinned = get_space("efficientnet", **options, fix=fix)
    rows = [pinned.sample(rng) for _ in range(200)]
    got = pinned.cost_batch(pinned.encode(rows), **task).flops
    assert got.tolist() == [pinned.cost(pinned.decode(p).arch, **task).flops for p in rows]


def test_small_layout_cost_range_and_drop_path_by_block_index() -> None:
    space = get_space("efficientnet")
    lo = space.cost(space.decode(space.smallest_params()).arch, **SMALL)
    hi = space.cost(space.decode(space.largest_params()).arch, **SMALL)
    assert 0.1 < lo.mflops < 0.2 and 5 < hi.mflops < 8  # fbnetv3-small: 0.11-7.6
    arch = space.decode(space.largest_params()).arch
    model = build_model(arch, 10, 1)
    blocks = list(model.blocks)
    assert len(blocks) == sum(arch.depths) == 16
    for idx, block in enumerate(blocks):  # timm: drop_path_rate * idx / total
        if block.residual:
            assert block.drop_path.depth_scale == pytest.approx(idx / len(blocks))
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)  # 28 px ends at 2x2, not 0


# --------------------------------------------------------------------------- params, options


def test_round_trips_structure_keys_and_errors() -> None:
    space = get_space("efficientnet")
    assert space.name == "efficientnet" and space.fixed == {"s1_expansion": 1}
    assert len(space.distributions) == 25 and space.default_task == SMALL
    rng = np.random.default_rng(0)
    for params in [space.sample(rng) for _ in range(300)]:
        cand = space.decode(params)
        back = space.to_params(cand)
        assert back == pytest.approx(params) and space.decode(back) == cand
    corners = [space.smallest_params(), space.largest_params()]
    decoded = space.decode_matrix(space.encode(corners))  # encode -> decode (log lr: ulps)
    assert [space.decode(p).arch for p in decoded] == [space.decode(p).arch for p in corners]
    for name, params in space.named_candidates().items():  # presets keep their layout keys
        assert space.to_params(space.decode(params)) == params, name
    imagenet = get_space("efficientnet", layout="imagenet")
    b0 = space.named_candidates()["EfficientNet-B0"]
    assert imagenet.decode(b0) == space.decode(b0)
    assert space.fingerprint() == EfficientNetSpace().fingerprint()
    fingerprints = {space.fingerprint(), imagenet.fingerprint()}
    fingerprints.add(get_space("efficientnet", divisor=4).fingerprint())
    assert len(fingerprints) == 3
    pinned = get_space("efficientnet", fix={"resolution": 20, "s2_kernel": 5})
    assert "resolution" not in pinned.distributions and pinned.name == "efficientnet-fixed"
    cand = pinned.decode(pinned.sample(rng))
    assert (cand.arch.resolution, cand.arch.stages[1].kernel) == (20, 5)
    with pytest.raises(ValueError, match="fixes it at 20"):
        pinned.to_params(space.decode({**space.smallest_params(), "resolution": 24}))
    for options, message in (
        ({"layout": "cifar"}, "unknown layout 'cifar'"),
        ({"divisor": 0}, "divisor must be a positive integer"),
        ({"fix": {"s1_expansion": 1}}, "cannot fix 's1_expansion'"),
    ):
        with pytest.raises(ValueError, match=message):
            get_space("efficientnet", **options)
    with pytest.raises(ValueError, match=r"'width_mult' = 0\.301"):
        space.decode({**space.smallest_params(), "width_mult": 0.3 + 1e-3})
    with pytest.raises(ValueError, match="unknown layout"):
        space.decode({**space.smallest_params(), "layout": "huge"})


def test_describe_rows_add_up(one_torch_thread) -> None:
    space = get_space("efficientnet")
    info = describe_params(space, space.largest_params(), **SMALL)
    assert [r["name"] for r in info["rows"]] == ["stem", *(f"s{i}" for i in range(1, 8)), "head"]
    assert sum(r["params"] for r in info["rows"]) == info["params"]
    assert info["rows"][-2]["out"][1:] == [2, 2]
    wide = describe_params(space, space.largest_params(), **SMALL, resolution=56)
    assert wide["mflops"] > 3 * info["mflops"] and wide["params"] == info["params"]


# --------------------------------------------------------------------------- pipeline


def test_full_tiny_run_on_digits(tmp_path, digits) -> None:
    config = RunConfig(
        storage=f"sqlite:///{tmp_path}/e.db",
        space="efficientnet",
        dataset="digits",
        max_mflops=0.4,
        trials=4,
        epochs=1,
        fine_generations=2,
        fine_population=8,
        fine_children=64,
        final_top=1,
        final_epochs=1,
        out=str(tmp_path / "out"),
    )
    study = run(config, data=digits.subset(train=256, val=128), progress=False)
    coarse = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(coarse) == 4 and all(0 < t.user_attrs["mflops"] <= 0.4 for t in coarse)
    assert study.user_attrs["jointnas:space"] == "efficientnet"
    best = json.loads((tmp_path / "out" / "best.json").read_text())
    assert best["space"]["name"] == "efficientnet" and 0 <= best["val_acc"] <= 1
    space = get_space("efficientnet")
    assert space.cost(space.decode(best["params"]).arch, **SMALL).mflops <= 0.4
