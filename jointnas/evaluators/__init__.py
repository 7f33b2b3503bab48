"""Evaluators: how a trial's candidate gets its accuracy (see ``base``).

``scratch.TrainFromScratch`` trains it (the stand-alone accuracy every method is judged by);
``supernet.InheritWeights`` scores it with a trained supernet's weights. Imports training and
the supernet wing below; the objective in runs calls them.
"""

from jointnas.evaluators.base import Evaluation, Evaluator
from jointnas.evaluators.scratch import TrainFromScratch
from jointnas.evaluators.supernet import InheritWeights

__all__ = ["Evaluation", "Evaluator", "InheritWeights", "TrainFromScratch"]
