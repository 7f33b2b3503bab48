"""Tests for jointnas.spaces.nets.model: every candidate builds and runs; seeding; errors."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pytest
import torch

from jointnas.spaces import Network
from jointnas.spaces.fbnetv3 import Arch, FBNetV3Space
from jointnas.spaces.nets.blocks import DropPath, InvertedResidual
from jointnas.spaces.nets.cost import cost
from jointnas.spaces.nets.fbnetv3 import FBNetV3Net, arch_cost
from jointnas.spaces.nets.model import build_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TASK = {"num_classes": 10, "in_channels": 1}


def _arch(preset: str, params: dict | None = None) -> Arch:
    space = FBNetV3Space(preset=preset)
    return space.decode(params if params is not None else space.smallest_params()).arch


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------- builds and runs


def test_random_small_candidates_build_and_run() -> None:
    space = FBNetV3Space(preset="small")
    rng = np.random.default_rng(0)
    for _ in range(20):
        arch = space.decode(space.sample(rng)).arch
        model = build_model(arch, 10, 1, seed=0)
        assert isinstance(model, FBNetV3Net) and model.arch == arch
        assert len(model.blocks) == sum(s.depth for s in arch.stages)
        x = torch.randn(2, 1, arch.resolution, arch.resolution)
        model.train()
        out = model(x)
        assert out.shape == (2, 10)
        assert torch.isfinite(out).all()
        out.sum().backward()  # trainable end to end
        assert all(p.grad is not None for p in model.parameters())
        model.eval()
        with torch.no_grad():
            out = model(x)
        assert out.shape == (2, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize("corner", ["smallest", "largest"])
def test_small_corners_build_and_run(corner: str) -> None:
    space = FBNetV3Space(preset="small")
    params = space.smallest_params() if corner == "smallest" else space.largest_params()
    arch = space.decode(params).arch
    model = build_model(arch, 10, 1, seed=1).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, arch.resolution, arch.resolution))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize("corner", ["smallest", "largest"])
def test_imagenet_corners_build_and_run(corner: str) -> None:
    space = FBNetV3Space(preset="imagenet")
    params = space.smallest_params() if corner == "smallest" else space.largest_params()
    arch = space.decode(params).arch
    assert arch.resolution == (224 if corner == "smallest" else 272)
    model = build_model(arch, 1000, 3, seed=2).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, arch.resolution, arch.resolution))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()


def test_model_structure_follows_arch() -> None:
    space = FBNetV3Space(preset="small")
    params = {**space.smallest_params(), "s1_width": 8, "stem_width": 8, "s4_depth": 3}
    arch = space.decode(params).arch
    model = build_model(arch, 7, 3)
    assert model.stem[0].in_channels == 3 and model.stem[0].out_channels == 8
    assert model.head.fc.out_features == 7
    blocks = list(model.blocks)
    assert all(isinstance(b, InvertedResidual) for b in blocks)
    # s1: 8 -> 8 at stride 1 keeps a residual; s2's first block strides and changes width
    assert blocks[0].residual and isinstance(blocks[0].drop_path, DropPath)
    assert not blocks[1].residual
    assert blocks[1].depthwise[0].stride == (2, 2)
    # the repeated blocks of s4 are residual; drop-path depth scales run 0 -> 1
    assert [b.residual for b in blocks[-3:]] == [False, True, True]
    scales = [b.drop_path.depth_scale for b in blocks if isinstance(b.drop_path, DropPath)]
    assert scales == sorted(scales) and scales[0] == 0.0 and scales[-1] == 1.0
    # spatial output of the trunk: 16 -> 8 (stem) -> 4 (s2) -> 2 (s3)
    with torch.no_grad():
        trunk = model.blocks(model.stem(torch.zeros(1, 3, 16, 16)))
    assert trunk.shape == (1, arch.stages[-1].width, 2, 2)


# --------------------------------------------------------------------------- seeding


def test_seed_gives_reproducible_weights() -> None:
    arch = _arch("small")
    a, b = _state(build_model(arch, 10, 1, seed=7)), _state(build_model(arch, 10, 1, seed=7))
    c = _state(build_model(arch, 10, 1, seed=8))
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    weights = [k for k in a if k.endswith("weight") and a[k].dtype.is_floating_point]
    random = [k for k in weights if a[k].std() > 0]  # conv/linear weights (BN weights are 1)
    assert len(random) >= 10
    assert all(not torch.equal(a[k], c[k]) for k in random)
    # same seed, same forward pass
    x = torch.randn(2, 1, arch.resolution, arch.resolution)
    m1, m2 = build_model(arch, 10, 1, seed=7).eval(), build_model(arch, 10, 1, seed=7).eval()
    with torch.no_grad():
        assert torch.equal(m1(x), m2(x))


def test_seed_does_not_touch_global_rng() -> None:
    arch = _arch("small")
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    build_model(arch, 10, 1, seed=5)
    after = torch.get_rng_state()
    assert torch.equal(before, after)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    assert torch.equal(torch.rand(3), expected)
    # without a seed the builder draws from (and so advances) the global RNG
    torch.manual_seed(1234)
    build_model(arch, 10, 1)
    assert not torch.equal(torch.get_rng_state(), before)
    # ... so unseeded builds under the same global seed also agree
    torch.manual_seed(99)
    u1 = _state(build_model(arch, 10, 1))
    torch.manual_seed(99)
    u2 = _state(build_model(arch, 10, 1))
    assert all(torch.equal(u1[k], u2[k]) for k in u1)


# --------------------------------------------------------------------------- errors


def test_unknown_arch_type_raises_type_error() -> None:
    with pytest.raises(TypeError, match="no model builder registered for dict"):
        build_model({"resolution": 16}, 10, 1)
    with pytest.raises(TypeError, match="no model builder registered for str"):
        build_model("fbnetv3", 10, 1, seed=0)


def test_a_space_class_declares_the_network_of_its_arch_type_once() -> None:
    """``network`` on a Space class is the registration ``build_model``/``cost`` read: a
    subclass of the architecture type dispatches to it, a second, different network for the
    same type is refused (``jointnas.cost`` would depend on import order), the same is not."""

    @dataclass(frozen=True)
    class Wider(Arch):  # an architecture subclass builds like its base
        pass

    wide = Wider(**{f.name: getattr(_arch("small"), f.name) for f in fields(Arch)})
    assert isinstance(build_model(wide, 10, 1, seed=0), FBNetV3Net)
    assert cost(wide, num_classes=10, in_channels=1) == cost(_arch("small"), **TASK)
    with pytest.raises(ValueError, match=r"declares a network for Arch, which .*FBNetV3Space"):

        class Other(FBNetV3Space):
            network = Network(Arch, lambda *a, **k: None, arch_cost)

    class Same(FBNetV3Space):  # inherits, or re-declares the same pair: fine
        network = FBNetV3Space.network

    with pytest.raises(TypeError, match="must be a jointnas Network"):

        class Bad(FBNetV3Space):
            network = (Arch, build_model)


def test_bad_num_classes_and_channels_raise_value_error() -> None:
    arch = _arch("small")
    for bad in (1, 0, -3):
        with pytest.raises(ValueError, match=f"num_classes must be >= 2, got {bad}"):
            build_model(arch, bad, 1)
    with pytest.raises(ValueError, match="in_channels must be >= 1, got 0"):
        build_model(arch, 10, 0, seed=0)
    assert build_model(arch, 2, 1).head.fc.out_features == 2  # the boundary is allowed
