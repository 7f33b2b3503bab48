"""Spaces by name, so an artifact (a predictor, a study) can rebuild the space it was made for.

A new space registers a factory here under its ``Space.name``; ``space_from_name`` is how
``load_predictor`` and the CLI get a space back from a stored name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jointnas.spaces.base import Space
from jointnas.spaces.fbnetv3 import PRESETS, FBNetV3Space

SPACES: dict[str, Callable[..., Space]] = {
    f"fbnetv3-{preset}": (lambda preset=preset, fix=None: FBNetV3Space(preset=preset, fix=fix))
    for preset in PRESETS
}
FIXED_SUFFIX = "-fixed"


def space_from_name(name: str, fix: Mapping[str, Any] | None = None) -> Space:
    """A fresh instance of the space registered as ``name`` (with ``fix`` pinned, for a name
    ending in ``-fixed``), or ValueError naming the known spaces."""
    base = name.removesuffix(FIXED_SUFFIX)
    if base not in SPACES:
        raise ValueError(f"unknown space {name!r}; known spaces: {sorted(SPACES)}")
    if (base != name) != bool(fix):
        raise ValueError(f"space {name!r} needs its pinned parameters (and only it does)")
    return SPACES[base](fix=fix) if fix else SPACES[base]()
