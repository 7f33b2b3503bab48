"""jointnas: predictor-driven joint architecture + training-recipe search (FBNetV3 JointNAS),
driven through Optuna studies, on any registered search space."""

from jointnas.errors import ConfigError, InfeasibleConstraintError, JointNASError
from jointnas.evaluators import Evaluation, Evaluator, TrainFromScratch
from jointnas.runs.objective import Limits, Objective
from jointnas.runs.pipeline import RunConfig, run
from jointnas.runs.reward import Reward
from jointnas.samplers import AdaptiveGeneticSampler, CoarseSampler, FeasibleSampler
from jointnas.spaces import (
    Arch,
    Candidate,
    Encoder,
    FBNetV3Space,
    Recipe,
    Space,
    Stage,
    get_space,
    register,
)
from jointnas.spaces.nets.blocks import Cost
from jointnas.spaces.nets.cost import cost, cost_batch
from jointnas.spaces.nets.model import build_model
from jointnas.training.data import Dataset, DatasetError, load_dataset
from jointnas.training.trainer import TrainingDiverged, TrainResult, train

__version__ = "0.1.0"

__all__ = [
    "AdaptiveGeneticSampler",
    "Arch",
    "Candidate",
    "CoarseSampler",
    "ConfigError",
    "Cost",
    "Dataset",
    "DatasetError",
    "Encoder",
    "Evaluation",
    "Evaluator",
    "FBNetV3Space",
    "FeasibleSampler",
    "InfeasibleConstraintError",
    "JointNASError",
    "Limits",
    "Objective",
    "Recipe",
    "Reward",
    "RunConfig",
    "Space",
    "Stage",
    "TrainFromScratch",
    "TrainResult",
    "TrainingDiverged",
    "build_model",
    "cost",
    "cost_batch",
    "get_space",
    "load_dataset",
    "register",
    "run",
    "train",
]
