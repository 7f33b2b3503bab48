"""`jointnas spaces` and `jointnas describe`: every registered space, one network part by part."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import run_cli

from jointnas.errors import ConfigError
from jointnas.spaces import get_space, registered
from jointnas.spaces.summary import space_summary
from jointnas.tools.describe import describe_params


def test_spaces_lists_every_registered_space_with_its_range():
    assert {"fbnetv3-small", "fbnetv3-imagenet"} <= set(registered())
    row = space_summary("fbnetv3-small")
    space = get_space("fbnetv3-small")
    assert row["parameters"] == len(space.distributions) == 26
    lo = space.cost(space.decode(space.smallest_params()).arch, num_classes=10, in_channels=1)
    hi = space.cost(space.decode(space.largest_params()).arch, num_classes=10, in_channels=1)
    assert (row["mflops_smallest"], row["mflops_largest"]) == (lo.mflops, hi.mflops)
    big = space_summary("fbnetv3-imagenet")
    assert big["task"] == {"num_classes": 1000, "in_channels": 3}
    assert 100 < big["mflops_smallest"] < big["mflops_largest"]


@pytest.mark.parametrize("name", ["fbnetv3-small", "fbnetv3-imagenet"])
def test_describe_rows_add_up_to_the_analytic_cost(name):
    space = get_space(name)
    task = dict(space.default_task)
    for params in space.named_candidates().values():
        info = describe_params(space, params, **task)
        c = space.cost(space.decode(params).arch, **task)
        assert (info["params"], info["acts"]) == (c.params, c.acts)
        assert info["mflops"] == pytest.approx(c.mflops)
        assert sum(r["params"] for r in info["rows"]) == c.params
        assert sum(r["acts"] for r in info["rows"]) == c.acts
        assert sum(r["mflops"] for r in info["rows"]) == pytest.approx(c.mflops)


def test_describe_resolution_and_task_change_the_count(one_torch_thread):
    space = get_space("fbnetv3-small")
    params = space.smallest_params()
    base = describe_params(space, params, num_classes=10, in_channels=1)
    wide = describe_params(space, params, num_classes=100, in_channels=3, resolution=64)
    assert wide["resolution"] == 64 and wide["mflops"] > 10 * base["mflops"]
    from fvcore.nn import FlopCountAnalysis

    arch = space.decode({**params}).arch.__class__(
        **{
            **wide["arch"],
            "stages": tuple(
                type(space.decode(params).arch.stages[0])(**st) for st in wide["arch"]["stages"]
            ),
        }
    )
    model = space.build_model(arch, num_classes=100, in_channels=3).eval()
    flops = FlopCountAnalysis(model, torch.zeros(1, 3, 64, 64)).unsupported_ops_warnings(False)
    assert flops.total() / 1e6 == pytest.approx(wide["mflops"])


def test_describe_cli_json_arch_file_and_bad_input(tmp_path):
    space = get_space("fbnetv3-small")
    params = space.largest_params()
    (tmp_path / "best.json").write_text(json.dumps({"params": space.arch_params(params)}))
    done = run_cli("describe", "--arch", str(tmp_path / "best.json"), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert {"mflops", "params", "acts", "rows"} <= set(info)
    c = space.cost(space.decode(params).arch, num_classes=10, in_channels=1)
    assert (info["params"], info["acts"]) == (c.params, c.acts)
    done = run_cli("describe", "--space", "fbnetv3-imagenet", "--preset", "largest", cwd=tmp_path)
    assert done.returncode == 0 and "total" in done.stdout and "1000 classes" in done.stdout
    for args, message in (
        (["--preset", "huge"], "has no preset 'huge'"),
        (["--space", "nope"], "unknown space 'nope'"),
        (["--arch", str(tmp_path / "missing.json")], "--arch: no file"),
        (["--preset", "smallest", "--arch", str(tmp_path / "best.json")], "not both"),
    ):
        done = run_cli("describe", *args, cwd=tmp_path)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2 and len(lines) == 1 and message in lines[0], done.stderr
    with pytest.raises(ConfigError, match="no input resolution"):
        describe_params(_NoResolution(), {"x": 1}, num_classes=10, in_channels=1, resolution=8)


class _NoResolution:
    key = "no-resolution"

    def decode(self, params):
        from jointnas.spaces.base import Candidate

        return Candidate(("an", "arch", "without", "fields"), None)
