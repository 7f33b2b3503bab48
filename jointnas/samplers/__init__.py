"""Optuna samplers for constrained search (work on any fixed Optuna search space)."""

from jointnas.samplers.coarse import CoarseSampler
from jointnas.samplers.feasible import FeasibleSampler, is_feasible, sample_feasible
from jointnas.samplers.genetic import AdaptiveGeneticSampler

__all__ = [
    "AdaptiveGeneticSampler",
    "CoarseSampler",
    "FeasibleSampler",
    "is_feasible",
    "sample_feasible",
]
