"""jointnas: predictor-driven joint architecture + training-recipe search (FBNetV3 JointNAS),
driven through Optuna studies, on any registered search space.

The public names below are loaded on first use (PEP 562), so ``import jointnas.constraints`` or
``jointnas search`` on a shipped predictor does not pay for importing torch.

The house, lowest wing first (a wing imports only from wings below it; tests/test_house.py
checks it): ``errors``, ``files``, ``plotting``, ``validated`` (root helpers) < ``spaces``
(search spaces as data; ``spaces/nets`` the networks and their cost twins) < ``constraints``
< ``training`` < ``storage`` < ``supernet`` < ``evaluators`` < ``predictors`` < ``samplers``
< ``runs`` (the run skeleton and its drivers) < ``tools`` < ``designs`` (design-space studies)
< ``testing`` < ``cli``.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_PUBLIC = {
    "AdaptiveGeneticSampler": "jointnas.samplers",
    "Candidate": "jointnas.spaces",
    "CoarseSampler": "jointnas.samplers",
    "ConfigError": "jointnas.errors",
    "Cost": "jointnas.spaces.nets.blocks",
    "Dataset": "jointnas.training.data",
    "DatasetError": "jointnas.errors",
    "Encoder": "jointnas.spaces",
    "Evaluation": "jointnas.evaluators",
    "Evaluator": "jointnas.evaluators",
    "FBNetV3Space": "jointnas.spaces",
    "FeasibleSampler": "jointnas.samplers",
    "InfeasibleConstraintError": "jointnas.errors",
    "JointNASError": "jointnas.errors",
    "Limits": "jointnas.constraints",
    "Objective": "jointnas.runs.objective",
    "Recipe": "jointnas.spaces",
    "Reward": "jointnas.runs.reward",
    "RunConfig": "jointnas.runs.config",
    "Space": "jointnas.spaces",
    "TrainFromScratch": "jointnas.evaluators",
    "TrainResult": "jointnas.training.trainer",
    "TrainingDiverged": "jointnas.training.trainer",
    "build_model": "jointnas.spaces.nets.model",
    "cost": "jointnas.spaces.nets.cost",
    "cost_batch": "jointnas.spaces.nets.cost",
    "get_space": "jointnas.spaces",
    "load_dataset": "jointnas.training.data",
    "register": "jointnas.spaces",
    "run": "jointnas.runs.pipeline",
    "train": "jointnas.training.trainer",
}
#: FBNetV3's architecture types, top-level from before spaces were pluggable: they still
#: load, with a DeprecationWarning naming the module every space's types live in
_DEPRECATED = {"Arch": "jointnas.spaces.fbnetv3", "Stage": "jointnas.spaces.fbnetv3"}

__all__ = sorted(_PUBLIC)
#: subpackages and modules reachable as attributes without their own import statement
_WINGS = (
    "cli",
    "constraints",
    "designs",
    "errors",
    "evaluators",
    "files",
    "plotting",
    "predictors",
    "runs",
    "samplers",
    "spaces",
    "storage",
    "supernet",
    "testing",
    "tools",
    "training",
    "validated",
)


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        warnings.warn(
            f"jointnas.{name} is FBNetV3's; import it from {_DEPRECATED[name]}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(_DEPRECATED[name]), name)
    if name in _WINGS:  # ``import jointnas; jointnas.spaces.get_space(...)`` as before
        return importlib.import_module(f"jointnas.{name}")
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'jointnas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC, *_WINGS})


if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, eagerly
    from jointnas.constraints import Limits
    from jointnas.errors import (
        ConfigError,
        DatasetError,
        InfeasibleConstraintError,
        JointNASError,
    )
    from jointnas.evaluators import Evaluation, Evaluator, TrainFromScratch
    from jointnas.runs.config import RunConfig
    from jointnas.runs.objective import Objective
    from jointnas.runs.pipeline import run
    from jointnas.runs.reward import Reward
    from jointnas.samplers import AdaptiveGeneticSampler, CoarseSampler, FeasibleSampler
    from jointnas.spaces import Candidate, Encoder, FBNetV3Space, Recipe, Space, get_space, register
    from jointnas.spaces.nets.blocks import Cost
    from jointnas.spaces.nets.cost import cost, cost_batch
    from jointnas.spaces.nets.model import build_model
    from jointnas.training.data import Dataset, load_dataset
    from jointnas.training.trainer import TrainingDiverged, TrainResult, train
