"""Search spaces as data, by name: the contract (``base``), the registry, the built-in spaces.

``register(name, factory)`` adds a space (a user's package calls it when imported): the one
registration a space makes, since a space class that declares its ``network`` (``Network``:
architecture type, builder, cost) thereby tells ``jointnas.cost`` / ``jointnas.build_model``
how to handle its architectures. ``get_space(name, **options)`` makes one; ``registered()``
lists them. ``recipe_axes`` holds the recipe parameters every joint space searches. The
built-in space modules register themselves when a space is first looked up (``registry``).
"""

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> its module, loaded on first use (PEP 562): the networks import torch, and
#: the encoding, the recipe and the constraints must stay importable without it
_PUBLIC = {
    "PRESETS": "jointnas.spaces.fbnetv3",
    "Arch": "jointnas.spaces.fbnetv3",
    "Candidate": "jointnas.spaces.base",
    "DistributionSpace": "jointnas.spaces.base",
    "Encoder": "jointnas.spaces.encoding",
    "FBNetV3Space": "jointnas.spaces.fbnetv3",
    "Network": "jointnas.spaces.nets.network",
    "Preset": "jointnas.spaces.fbnetv3",
    "Recipe": "jointnas.spaces.recipe",
    "Space": "jointnas.spaces.base",
    "Stage": "jointnas.spaces.fbnetv3",
    "StageSpec": "jointnas.spaces.fbnetv3",
    "get_space": "jointnas.spaces.registry",
    "register": "jointnas.spaces.registry",
    "registered": "jointnas.spaces.registry",
    "space_from_record": "jointnas.spaces.registry",
}


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'jointnas.spaces' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from jointnas.spaces.base import Candidate, DistributionSpace, Space
    from jointnas.spaces.encoding import Encoder
    from jointnas.spaces.fbnetv3 import PRESETS, Arch, FBNetV3Space, Preset, Stage, StageSpec
    from jointnas.spaces.nets.network import Network
    from jointnas.spaces.recipe import Recipe
    from jointnas.spaces.registry import get_space, register, registered, space_from_record

#: the space ``jointnas run`` searches when none is named
DEFAULT_SPACE = "fbnetv3-small"

__all__ = [
    "DEFAULT_SPACE",
    "PRESETS",
    "Arch",
    "Candidate",
    "DistributionSpace",
    "Encoder",
    "FBNetV3Space",
    "Network",
    "Preset",
    "Recipe",
    "Space",
    "Stage",
    "StageSpec",
    "get_space",
    "register",
    "registered",
    "space_from_record",
]
