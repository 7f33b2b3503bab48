"""One line about a registered space: what ``jointnas spaces`` prints."""

from __future__ import annotations

from typing import Any

from jointnas.spaces.registry import get_space, registered


def space_summary(name: str) -> dict[str, Any]:
    """Name, searched-parameter count, and the MFLOPs/params of the smallest and largest
    candidates on the space's default task."""
    space = get_space(name)
    task = dict(space.default_task)
    out: dict[str, Any] = {
        "name": name,
        "parameters": len(space.distributions),
        "task": task,
        "summary": registered()[name].summary,
        "module": registered()[name].module,
    }
    for end, params in (("smallest", space.smallest_params()), ("largest", space.largest_params())):
        c = space.cost(space.decode(params).arch, **task)
        out[f"mflops_{end}"] = c.flops / 1e6
        out[f"params_{end}"] = int(c.params)
    return out
