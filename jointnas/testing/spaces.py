"""The space contract suite: what every jointnas search space must satisfy, checked on any space.

Like Optuna's sampler test suites, it is written once and run on every space, the built-in ones
(``tests/test_space_contract.py``) and a user's own, so a space written outside the package is
held to the same rules as ours. On a few seeded random candidates, the corners and the named
candidates of a space, for one task (``num_classes``, ``in_channels``; default: the space's
``default_task``):

* round trip: params -> candidate -> params gives the params back, and the same candidate;
* encoding: ``encode`` rows decode (``decode_matrix``) to the same candidates;
* exact cost: ``cost`` equals fvcore's count of the built network in eval mode (FLOPs as
  multiply-adds, activations), and its params ``sum(p.numel())``, all plain ints; the network
  runs (below);
* ``cost_batch`` (vectorised twin or row-by-row fallback) equals ``cost`` row by row;
* build + forward: every sampled candidate, the smallest and the named ones (so every layout
  the space offers through its presets; not ``largest``, which may be huge) build, and a
  forward pass of two images gives finite logits of shape (2, num_classes);
* extremes: no candidate costs fewer FLOPs than ``smallest_params`` or more than
  ``largest_params``;
* describe: the rows of ``layers`` add up to the totals of ``cost``.

Two ways to run it: ``check_space(space, ...)`` runs everything and raises AssertionError naming
the space, the check and the candidate; ``SpaceContract`` is a base class for pytest with one
test method per check, given a ``space`` fixture. ``max_resolution`` caps the input size of
architectures that carry a ``resolution`` field, so ImageNet-sized layouts are counted and run
on tiny inputs (the cost and fvcore see the same smaller input). Nothing here imports pytest.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from jointnas.spaces.base import Space
from jointnas.spaces.encoding import Params
from jointnas.spaces.nets.blocks import Cost

__all__ = [
    "SpaceContract",
    "check_cost",
    "check_cost_batch",
    "check_describe",
    "check_encoding",
    "check_extremes",
    "check_forward",
    "check_round_trip",
    "check_space",
    "fvcore_cost",
]

Task = Mapping[str, int]


def _require(ok: Any, space: Space, check: str, detail: str) -> None:
    """AssertionError ``space: check: detail`` unless ``ok`` (explicit, so ``python -O``
    cannot strip a check)."""
    if not ok:
        raise AssertionError(f"space {space.key!r}: {check}: {detail}")


def _close(a: Any, b: Any) -> bool:
    """Equal; numbers up to a few ulps (log-scale values lose them in encode/decode), but a
    bool only equals a bool (``True == 1`` in Python, not in a search space)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float, np.number)) and isinstance(b, (int, float, np.number)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _same_params(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)


def at_resolution(arch: Any, max_resolution: int | None) -> Any:
    """``arch`` with its ``resolution`` lowered to ``max_resolution`` when it is a dataclass
    with a larger one; any other architecture unchanged."""
    if max_resolution is None or not dataclasses.is_dataclass(arch):
        return arch
    size = getattr(arch, "resolution", None)
    if isinstance(size, int) and size > max_resolution:
        return dataclasses.replace(arch, resolution=max_resolution)
    return arch


def _input(arch: Any, in_channels: int, batch: int = 1) -> torch.Tensor:
    size = getattr(arch, "resolution", None) or 32
    return torch.zeros(batch, in_channels, size, size)


def fvcore_cost(model: torch.nn.Module, x: torch.Tensor) -> Cost:
    """fvcore's count of ``model`` on ``x`` (FLOPs as multiply-adds, activations) and
    ``sum(p.numel())``: the reference every analytic cost must equal. Puts ``model`` in eval
    mode (BatchNorm then counts as fvcore's analytic cost assumes)."""
    with warnings.catch_warnings():  # fvcore.nn scripts its focal loss at import (deprecated)
        warnings.simplefilter("ignore", DeprecationWarning)
        from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis

    model = model.eval()
    with torch.no_grad():
        flops = FlopCountAnalysis(model, x)
        flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        acts = ActivationCountAnalysis(model, x)
        acts.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        numel = sum(p.numel() for p in model.parameters())
        return Cost(int(flops.total()), int(numel), int(acts.total()))


# --------------------------------------------------------------------------- the checks


def check_round_trip(
    space: Space,
    params_list: Sequence[Mapping[str, Any]],
    named: Sequence[Mapping[str, Any]] = (),
) -> None:
    """params -> candidate -> params gives the params back (floats up to ulps) and decodes to
    the same candidate. ``named`` candidates may carry structure keys that ``to_params`` leaves
    out where they are the space's own (a layout key of the layout searched), so for them only
    the candidate must come back."""
    for params in [*params_list, *named]:
        cand = space.decode(params)
        back = space.to_params(cand)
        if not any(params is p for p in named):
            detail = f"{dict(params)} came back {back}"
            _require(_same_params(back, params), space, "round trip", detail)
        again = space.decode(back)
        _require(again == cand, space, "round trip", f"{dict(params)} decodes to another candidate")


def check_encoding(
    space: Space, params_list: Sequence[Mapping[str, Any]], task: Task | None = None
) -> None:
    """``encode`` gives one row per candidate in [0, 1] with one column per feature, and
    ``decode_matrix`` of the rows gives the same params (floats up to ulps) and the same
    network: an equal architecture, or one whose float fields moved by those ulps and which
    costs exactly the same (RegNet keeps its log-scale ``wa``, ``wm`` in the architecture)."""
    task = dict(task or space.default_task)
    X = space.encode(params_list)
    width = len(space.feature_names)
    _require(
        X.shape == (len(params_list), width),
        space,
        "encode",
        f"shape {X.shape}, expected {(len(params_list), width)}",
    )
    _require(np.all((X >= 0) & (X <= 1)), space, "encode", "features outside [0, 1]")
    for params, back in zip(params_list, space.decode_matrix(X), strict=True):
        detail = f"{dict(params)} decoded as {back}"
        _require(_same_params(back, space.validate(params)), space, "encode/decode", detail)
        arch, again = space.decode(params).arch, space.decode(back).arch
        same = arch == again or space.cost(arch, **task) == space.cost(again, **task)
        _require(same, space, "encode/decode", f"another network: {detail}")


def _forward(space: Space, model: torch.nn.Module, arch: Any, task: Task, label: str) -> None:
    """Two images through ``model`` in eval mode give finite (2, num_classes) logits."""
    with torch.no_grad():
        out = model.eval()(_input(arch, task["in_channels"], batch=2))
    shape = (2, task["num_classes"])
    detail = f"{label}: output {tuple(out.shape)}, expected {shape}"
    _require(tuple(out.shape) == shape, space, "forward", detail)
    _require(bool(torch.isfinite(out).all()), space, "forward", f"{label}: non-finite logits")


def check_cost(space: Space, arch: Any, *, num_classes: int, in_channels: int) -> Cost:
    """``space.cost(arch)`` is plain ints equal to fvcore's count of ``space.build_model(arch)``
    and its ``numel``, and the built network runs (one build serves both); returns the cost."""
    task = {"num_classes": num_classes, "in_channels": in_channels}
    c = space.cost(arch, **task)
    values = (c.flops, c.params, c.acts)
    types = [type(v).__name__ for v in values]
    _require(all(type(v) is int for v in values), space, "cost", f"not plain ints: {types}")
    model = space.build_model(arch, **task, seed=0)
    ref = fvcore_cost(model, _input(arch, in_channels))
    _require(
        c == ref,
        space,
        "cost == fvcore",
        f"analytic (flops, params, acts) {values} but fvcore/numel count "
        f"{(ref.flops, ref.params, ref.acts)} for {arch}",
    )
    _forward(space, model, arch, task, repr(arch))
    return c


def check_cost_batch(space: Space, params_list: Sequence[Mapping[str, Any]], task: Task) -> None:
    """``cost_batch`` of the encoded candidates is one int64 entry per row, equal to ``cost``
    of each decoded candidate."""
    batch = space.cost_batch(space.encode(params_list), **task)
    for field in ("flops", "params", "acts"):
        values = np.asarray(getattr(batch, field))
        kind = f"{values.dtype} {values.shape}"
        ok = values.dtype == np.int64 and values.shape == (len(params_list),)
        _require(ok, space, "cost_batch", f"{field} is {kind}, not int64 ({len(params_list)},)")
    for i, params in enumerate(params_list):
        c = space.cost(space.decode(params).arch, **task)
        got = (int(batch.flops[i]), int(batch.params[i]), int(batch.acts[i]))
        detail = f"row {i} {dict(params)}: {got} != cost {(c.flops, c.params, c.acts)}"
        _require(got == (c.flops, c.params, c.acts), space, "cost_batch == cost", detail)


def check_forward(
    space: Space,
    named: Mapping[str, Mapping[str, Any]],
    task: Task,
    *,
    max_resolution: int | None = None,
) -> None:
    """Each candidate of ``named`` (label -> params) builds and, in eval mode, maps two images
    to finite logits of shape (2, num_classes)."""
    for label, params in named.items():
        arch = at_resolution(space.decode(params).arch, max_resolution)
        _forward(space, space.build_model(arch, **task, seed=0), arch, task, label)


def check_extremes(space: Space, params_list: Sequence[Mapping[str, Any]], task: Task) -> None:
    """No candidate of ``params_list`` has fewer FLOPs than ``smallest_params`` nor more than
    ``largest_params`` (the impossible-limit message and ``jointnas spaces`` rely on it)."""
    low = space.cost(space.decode(space.smallest_params()).arch, **task).flops
    high = space.cost(space.decode(space.largest_params()).arch, **task).flops
    _require(low <= high, space, "extremes", f"smallest {low} flops > largest {high}")
    for params in params_list:
        flops = space.cost(space.decode(params).arch, **task).flops
        detail = f"{dict(params)} has {flops} flops, outside [{low}, {high}]"
        _require(low <= flops <= high, space, "extremes", detail)


def check_describe(space: Space, arch: Any, task: Task) -> None:
    """The rows of ``space.layers(arch)`` add up to ``space.cost(arch)``: params and
    activations exactly, MFLOPs up to float rounding."""
    rows = space.layers(arch, **task)
    total = space.cost(arch, **task)
    _require(rows, space, "describe", "no rows")
    params = sum(int(r["params"]) for r in rows)
    acts = sum(int(r["acts"]) for r in rows)
    mflops = sum(float(r["mflops"]) for r in rows)
    sums = f"rows sum to params {params}, acts {acts}, MFLOPs {mflops}"
    detail = f"{sums}; cost is {total.params}, {total.acts}, {total.flops / 1e6}"
    exact = (params, acts) == (total.params, total.acts)
    close = math.isclose(mflops, total.flops / 1e6, rel_tol=1e-9, abs_tol=1e-9)
    _require(exact and close, space, "describe", detail)


# --------------------------------------------------------------------------- the whole suite


def task_of(space: Space, num_classes: int | None, in_channels: int | None) -> dict[str, int]:
    """The task the suite sizes networks for: the given values, else the space's default."""
    task = dict(space.default_task)
    if num_classes is not None:
        task["num_classes"] = num_classes
    if in_channels is not None:
        task["in_channels"] = in_channels
    return task


def samples(space: Space, *, seed: int, n: int) -> list[Params]:
    """``n`` random candidates of ``space``, drawn from a Generator seeded with ``seed``."""
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def buildable(space: Space) -> dict[str, Params]:
    """What the suite builds beside the drawn candidates: the smallest and every named candidate
    but ``largest`` (the dearest corner can be far too big to build in a test)."""
    out = {"smallest": space.smallest_params()}
    out.update({k: dict(v) for k, v in space.named_candidates().items() if k != "largest"})
    return out


def check_space(
    space: Space,
    *,
    num_classes: int | None = None,
    in_channels: int | None = None,
    seed: int = 0,
    n: int = 4,
    max_resolution: int | None = None,
) -> None:
    """Run every check of the contract on ``space`` (see the module docstring): ``n`` seeded
    random candidates, the corners and the named candidates. AssertionError on the first
    broken rule, naming the space, the check and the candidate."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    task = task_of(space, num_classes, in_channels)
    drawn = samples(space, seed=seed, n=n)
    corners = [space.smallest_params(), space.largest_params()]
    named = space.named_candidates()
    check_round_trip(space, [*drawn, *corners], list(named.values()))
    check_encoding(space, [*drawn, *corners], task)
    for params in [*drawn, corners[0]]:
        arch = at_resolution(space.decode(params).arch, max_resolution)
        check_cost(space, arch, **task)
    check_cost_batch(space, [*drawn, *corners], task)
    others = {k: v for k, v in buildable(space).items() if k != "smallest"}  # built above
    check_forward(space, others, task, max_resolution=max_resolution)
    check_extremes(space, drawn, task)
    check_describe(space, at_resolution(space.decode(drawn[0]).arch, max_resolution), task)


class SpaceContract:
    """The contract as pytest tests: subclass it in a test module, provide a ``space`` fixture,
    and every check runs as a test of its own (this class itself is not collected)::

        class TestMySpace(SpaceContract):
            n = 2  # random candidates per check

            @pytest.fixture
            def space(self):
                return jointnas.spaces.get_space("my-space")

    A parametrised ``space`` fixture runs the suite on several spaces. Class attributes set
    the task (None: the space's ``default_task``), the seed, the number of random candidates
    and the input-size cap, as ``check_space``'s arguments do.
    """

    num_classes: int | None = None
    in_channels: int | None = None
    seed: int = 0
    n: int = 4
    max_resolution: int | None = None

    def _task(self, space: Space) -> dict[str, int]:
        return task_of(space, self.num_classes, self.in_channels)

    def _drawn(self, space: Space) -> list[Params]:
        return samples(space, seed=self.seed, n=self.n)

    def _corners(self, space: Space) -> list[Params]:
        return [space.smallest_params(), space.largest_params()]

    def test_round_trip(self, space: Space) -> None:
        named = list(space.named_candidates().values())
        check_round_trip(space, [*self._drawn(space), *self._corners(space)], named)

    def test_encode_decode(self, space: Space) -> None:
        check_encoding(space, [*self._drawn(space), *self._corners(space)], self._task(space))

    def test_cost_equals_fvcore_and_numel(self, space: Space) -> None:
        for params in [*self._drawn(space), space.smallest_params()]:
            arch = at_resolution(space.decode(params).arch, self.max_resolution)
            check_cost(space, arch, **self._task(space))

    def test_cost_batch_equals_cost(self, space: Space) -> None:
        check_cost_batch(space, [*self._drawn(space), *self._corners(space)], self._task(space))

    def test_named_candidates_build_and_run(self, space: Space) -> None:
        named = buildable(space)  # the drawn ones run in the fvcore test
        check_forward(space, named, self._task(space), max_resolution=self.max_resolution)

    def test_corners_are_the_cost_extremes(self, space: Space) -> None:
        check_extremes(space, self._drawn(space), self._task(space))

    def test_describe_rows_add_up(self, space: Space) -> None:
        arch = at_resolution(space.decode(self._drawn(space)[0]).arch, self.max_resolution)
        check_describe(space, arch, self._task(space))
