"""Every built-in space keeps the space contract (``jointnas.testing.spaces``), in every layout
it offers and with parameters pinned; and the suite catches the faults it is there to catch.

Each registered name runs the suite in its own layout and in each other layout of its family
(``space.layouts``). ImageNet-sized layouts draw one random candidate instead of three, and
every network is counted and run on inputs of at most 32 px, so the file stays fast.
"""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from typing import Any

import pytest

from jointnas.spaces import get_space, registered
from jointnas.spaces.base import Space
from jointnas.spaces.nets.blocks import Cost
from jointnas.testing import SpaceContract, check_space

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = 32  # px: the largest input any network of this file is counted or run at


def _cases() -> list[tuple[str, dict[str, Any]]]:
    """(registered name, options): every built-in name in its own and its other layouts, two
    pinned (``fix=``) spaces and two other options of a family."""
    out: list[tuple[str, dict[str, Any]]] = []
    for name, entry in registered().items():
        if not entry.module.startswith("jointnas."):  # a test's own space registered earlier
            continue
        space = get_space(name)
        out.append((name, {}))
        own = getattr(getattr(space, "layout", None), "name", None)
        out += [(name, {"layout": lay}) for lay in getattr(space, "layouts", {}) if lay != own]
    out.append(("fbnetv3-small", {"fix": {"resolution": 20, "s2_kernel": 5}}))
    out.append(("efficientnet", {"fix": {"width_mult": 0.25, "s3_kernel": 5, "lr": 0.1}}))
    out.append(("efficientnet", {"divisor": 4}))  # tiny nets' finer channel rounding
    out.append(("anynetx-a", {"se": True}))  # AnyNetY: the Y block (X + squeeze-excite)
    return out


@functools.cache
def _space(name: str, options: str) -> Space:
    """One instance per case for the whole file (corners of RegNet are a grid search)."""
    return get_space(name, **json.loads(options))


def _large(name: str, options: dict[str, Any]) -> bool:
    space = _space(name, json.dumps(options))
    return space.default_task["num_classes"] > 10


CASES = _cases()
SMALL = [c for c in CASES if not _large(*c)]
LARGE = [c for c in CASES if _large(*c)]


def _id(case: tuple[str, dict[str, Any]]) -> str:
    name, options = case
    words = [f"{k}={v}" if k != "fix" else "fixed" for k, v in options.items()]
    return "-".join([name, *words])


def test_every_built_in_space_and_layout_is_covered() -> None:
    names = {n for n, e in registered().items() if e.module.startswith("jointnas.")}
    assert {name for name, _ in CASES} == names and len(names) >= 11
    assert ("efficientnet", {"layout": "imagenet"}) in CASES
    assert ("anynetx-c", {"layout": "imagenet"}) in CASES
    assert ("shufflenet-choice", {"layout": "imagenet"}) in CASES
    assert len(LARGE) >= 9 and len(SMALL) >= 14


class TestSmallLayouts(SpaceContract):
    n = 3
    max_resolution = TINY  # the small layouts are <= 28 px; this caps their ImageNet presets

    @pytest.fixture(params=SMALL, ids=[_id(c) for c in SMALL])
    def space(self, request: pytest.FixtureRequest) -> Space:
        name, options = request.param
        return _space(name, json.dumps(options))


class TestImageNetLayouts(SpaceContract):
    n = 1
    max_resolution = TINY

    @pytest.fixture(params=LARGE, ids=[_id(c) for c in LARGE])
    def space(self, request: pytest.FixtureRequest) -> Space:
        name, options = request.param
        return _space(name, json.dumps(options))


# --------------------------------------------------------------------------- the function form


@pytest.mark.parametrize("name", ["shufflenet-choice", "efficientnet", "anynetx-a"])
def test_check_space_passes_on_another_task(name: str) -> None:
    check_space(get_space(name), num_classes=3, in_channels=3, n=1, seed=5)


class _OffByOne(Space):
    """A built-in space with one fault, chosen by ``fault``."""

    def __init__(self, fault: str) -> None:
        self.base, self.fault = get_space("fbnetv3-small"), fault
        self.name, self.recipe_names = "faulty", self.base.recipe_names

    @property
    def distributions(self) -> Any:
        return self.base.distributions

    def decode(self, params: Any) -> Any:
        cand = self.base.decode(params)
        if self.fault == "decode":  # the resolution is lost: to_params cannot give it back
            return replace(cand, arch=replace(cand.arch, resolution=16))
        return cand

    def to_params(self, candidate: Any) -> Any:
        return self.base.to_params(candidate)

    def cost(self, arch: Any, *, num_classes: int, in_channels: int) -> Cost:
        c = self.base.cost(arch, num_classes=num_classes, in_channels=in_channels)
        return c + Cost(1, 0, 0) if self.fault == "cost" else c

    def cost_batch(self, X: Any, *, num_classes: int, in_channels: int) -> Cost:
        c = self.base.cost_batch(X, num_classes=num_classes, in_channels=in_channels)
        return Cost(c.flops, c.params + 1, c.acts) if self.fault == "batch" else c

    def largest_params(self) -> Any:
        return self.base.smallest_params() if self.fault == "corner" else super().largest_params()


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("cost", r"'faulty': cost == fvcore: analytic .* but fvcore/numel count"),
        ("decode", r"'faulty': round trip: .* came back"),
        ("batch", r"'faulty': cost_batch == cost: row 0"),
        ("corner", r"'faulty': extremes: .* outside \["),
    ],
)
def test_check_space_names_the_broken_rule(fault: str, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_space(_OffByOne(fault), n=2)


# ------------------------------------------------------------------- the augmentation recipe axis


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_augment_strength_round_trips_in_every_space_that_searches_a_recipe(case) -> None:
    """Every space with a recipe searches ``augment``: a drawn value reaches ``Recipe.augment``
    and comes back from ``to_params``; a space without a recipe has none."""
    space = _space(case[0], json.dumps(case[1]))
    if not space.recipe_names:
        assert "augment" not in space.distributions
        return
    assert "augment" in space.recipe_names
    dist = space.distributions["augment"]
    assert (dist.low, dist.high) == (0.0, 1.0)
    for value in (0.0, 0.37, 1.0):
        params = {**space.smallest_params(), "augment": value}
        cand = space.decode(params)
        assert cand.recipe.augment == value
        assert space.to_params(cand)["augment"] == value


def test_spaces_recorded_before_the_augment_axis_still_load() -> None:
    """A study or predictor stores its space's fingerprint; one written before ``augment`` was
    a recipe axis rebuilds that older space (candidates then train with augment 0)."""
    from jointnas.spaces.recipe_axes import before_augment_axis
    from jointnas.spaces.registry import space_from_record, space_record

    for name in ("fbnetv3-small", "efficientnet", "regnet"):
        with before_augment_axis():
            old = get_space(name)
        assert "augment" not in old.distributions
        assert old.fingerprint() != get_space(name).fingerprint()
        loaded = space_from_record(space_record(old))
        assert loaded.fingerprint() == old.fingerprint()
        assert loaded.decode(loaded.smallest_params()).recipe.augment == 0.0
    with pytest.raises(ValueError, match="has changed since it was recorded"):
        space_from_record({**space_record(get_space("regnet")), "fingerprint": "0" * 16})
