"""The default rows of ``jointnas describe``: a network's top-level modules, counted by fvcore.

Spaces with stages give analytic rows of their own (``Space.layers``); this is the fallback for
any other network, measured rather than computed, since it only runs once per ``describe``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def module_rows(model: nn.Module, *, in_channels: int, resolution: int) -> list[dict[str, Any]]:
    """fvcore's flops/activations and the parameter count of each top-level child of
    ``model``, with the child's output shape (a forward hook on one eval-mode image)."""
    from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis

    model = model.eval()
    x = torch.zeros(1, in_channels, resolution, resolution)
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [
        child.register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:]))
        )
        for name, child in model.named_children()
    ]
    with torch.no_grad():
        flops = FlopCountAnalysis(model, x).unsupported_ops_warnings(False)
        flops.uncalled_modules_warnings(False)
        acts = ActivationCountAnalysis(model, x).unsupported_ops_warnings(False)
        acts.uncalled_modules_warnings(False)
        by_flops, by_acts = flops.by_module(), acts.by_module()
    for h in hooks:
        h.remove()
    return [
        {
            "name": name,
            "out": list(shapes.get(name, ())),
            "mflops": by_flops.get(name, 0) / 1e6,
            "params": sum(p.numel() for p in child.parameters()),
            "acts": int(by_acts.get(name, 0)),
        }
        for name, child in model.named_children()
    ]
