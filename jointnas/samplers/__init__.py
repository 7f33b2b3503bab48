"""Optuna samplers for constrained search (work on any fixed Optuna search space)."""

from jointnas.samplers.feasible import FeasibleSampler, is_feasible, sample_feasible

__all__ = ["FeasibleSampler", "is_feasible", "sample_feasible"]
