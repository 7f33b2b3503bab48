"""Evaluators: how a trial's candidate gets its accuracy (see ``base``)."""

from jointnas.evaluators.base import Evaluation, Evaluator
from jointnas.evaluators.scratch import TrainFromScratch
from jointnas.evaluators.supernet import InheritWeights

__all__ = ["Evaluation", "Evaluator", "InheritWeights", "TrainFromScratch"]
