"""Search spaces as data: Optuna distributions plus decode into frozen dataclasses."""

from jointnas.space.base import Candidate, DistributionSpace, Space
from jointnas.space.encoding import Encoder
from jointnas.space.fbnetv3 import PRESETS, Arch, FBNetV3Space, Preset, Recipe, Stage, StageSpec

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
