"""Search spaces as data: Optuna distributions plus decode into frozen dataclasses."""

from jointnas.recipe import Recipe
from jointnas.spaces.base import Candidate, DistributionSpace, Space
from jointnas.spaces.encoding import Encoder
from jointnas.spaces.fbnetv3 import PRESETS, Arch, FBNetV3Space, Preset, Stage, StageSpec

__all__ = [
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
]
