"""End-of-epoch training checkpoints, so a long (final) training killed mid-way resumes.

A checkpoint holds everything the next epoch depends on: weights, optimizer, LR schedule,
gradient scaler, EMA weights and the three random streams (torch's, the shuffling generator and
numpy's mixup generator). Restoring all of them makes an interrupted-and-resumed training give
the same numbers as an uninterrupted one (on CPU, bit for bit; tested).

Files are written atomically and read with ``torch.load(weights_only=True)``: no code runs on
load. A checkpoint made for other settings (``meta`` differs) is ignored, not trusted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from jointnas import files


def save(path: str | Path, meta: dict[str, Any], state: dict[str, Any]) -> None:
    with files.atomic_path(path) as tmp:
        torch.save({"meta": meta, **state}, tmp)


def load(path: str | Path | None, meta: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it exists and was made with ``meta``, else None."""
    if path is None or not Path(path).is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # truncated or foreign: train from the start rather than crash
        return None
    if not isinstance(state, dict) or state.get("meta") != meta:
        return None
    return state
