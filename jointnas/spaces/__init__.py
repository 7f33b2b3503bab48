"""Search spaces as data, by name: the contract (``base``), the registry, the built-in spaces.

``register(name, factory)`` adds a space (a user's package calls it when imported);
``get_space(name, **options)`` makes one; ``registered()`` lists them. Importing this package
imports the built-in space modules, each of which registers itself.
"""

# built-in spaces register themselves on import (their nets/ modules register cost + builder)
from jointnas.spaces import (  # noqa: F401
    anynet,
    efficientnet,
    fbnetv3,
    regnet,
    shufflenet_choice,
)
from jointnas.spaces.base import Candidate, DistributionSpace, Space
from jointnas.spaces.encoding import Encoder
from jointnas.spaces.fbnetv3 import PRESETS, Arch, FBNetV3Space, Preset, Stage, StageSpec
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
