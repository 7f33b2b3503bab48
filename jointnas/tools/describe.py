"""``jointnas describe``: one network of any space as a table of its parts and their cost.

Like pycls's complexity report or timm's model summary: one row per part (stem, stages, head)
with its output shape, MFLOPs, params and activations, and a total that is the space's exact
analytic cost. Spaces with stages give their own analytic rows (``Space.layers``); any other
space gets one row per top-level module of its network, counted by fvcore.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from jointnas.errors import ConfigError
from jointnas.spaces.base import Space
from jointnas.spaces.nets.layers import module_rows  # noqa: F401 (re-exported)


def describe_params(
    space: Space,
    params: Mapping[str, Any],
    *,
    num_classes: int,
    in_channels: int,
    resolution: int | None = None,
) -> dict[str, Any]:
    """The table of one candidate: ``rows`` plus the totals ``mflops``, ``params``, ``acts``
    (the space's analytic cost), the architecture and the space it belongs to."""
    arch = space.decode(params).arch
    if resolution is not None:
        if not (dataclasses.is_dataclass(arch) and hasattr(arch, "resolution")):
            raise ConfigError(f"--resolution: space {space.key!r} has no input resolution")
        arch = dataclasses.replace(arch, resolution=resolution)
    task = {"num_classes": num_classes, "in_channels": in_channels}
    total = space.cost(arch, **task)
    return {
        "space": space.key,
        "task": task,
        "resolution": getattr(arch, "resolution", None),
        "rows": space.layers(arch, **task),
        "mflops": total.flops / 1e6,
        "params": int(total.params),
        "acts": int(total.acts),
        "arch": dataclasses.asdict(arch) if dataclasses.is_dataclass(arch) else repr(arch),
    }


def pick_params(space: Space, *, preset: str | None, arch_file: str | None) -> dict[str, Any]:
    """The params of ``--preset NAME`` (a named candidate of the space) or ``--arch FILE``
    (architecture keys; recipe keys, if missing, taken from the smallest candidate)."""
    if preset is not None and arch_file is not None:
        raise ConfigError("give --preset or --arch, not both")
    named = space.named_candidates()
    if arch_file is None:
        name = preset or "smallest"
        if name not in named:
            raise ConfigError(f"space {space.key!r} has no preset {name!r}; it has {sorted(named)}")
        return dict(named[name])
    from jointnas.storage.candidates import read_arch

    arch = read_arch(arch_file, space, option="--arch")
    return {**space.smallest_params(), **arch}


def format_table(info: Mapping[str, Any]) -> str:
    """The describe table as text: one row per part, then the analytic total."""
    task = info["task"]
    lines = [
        f"space {info['space']}: {task['num_classes']} classes, {task['in_channels']} input "
        f"channel(s), resolution {info['resolution']}",
        f"{'part':<12} {'output':>14} {'MFLOPs':>10} {'params':>10} {'acts':>10}  block",
    ]
    for r in info["rows"]:
        out = "x".join(str(v) for v in r["out"])
        lines.append(
            f"{r['name']:<12} {out:>14} {r['mflops']:>10.3f} {r['params']:>10,} {r['acts']:>10,}"
            f"  {r.get('block', '')}".rstrip()
        )
    lines.append(
        f"{'total':<12} {'':>14} {info['mflops']:>10.3f} {info['params']:>10,} {info['acts']:>10,}"
    )
    return "\n".join(lines)


def to_json(info: Mapping[str, Any]) -> str:
    return json.dumps(info, indent=2, default=str)
