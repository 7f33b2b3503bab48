"""Spaces by name, so an artifact (a predictor, a study) can rebuild the space it was made for.

A new space registers a factory here under its ``Space.name``; ``space_from_name`` is how
``load_predictor`` and the CLI get a space back from a stored name.
"""

from __future__ import annotations

from collections.abc import Callable

from jointnas.space.base import Space
from jointnas.space.fbnetv3 import PRESETS, FBNetV3Space

SPACES: dict[str, Callable[[], Space]] = {
    f"fbnetv3-{preset}": (lambda preset=preset: FBNetV3Space(preset=preset)) for preset in PRESETS
}


def space_from_name(name: str) -> Space:
    """A fresh instance of the space registered as ``name``, or ValueError naming the known."""
    try:
        return SPACES[name]()
    except KeyError:
        raise ValueError(f"unknown space {name!r}; known spaces: {sorted(SPACES)}") from None
