"""One-shot weight sharing: a supernet of the choice-block space trained one path per step.

``model`` holds the supernet and extracts subnets with inherited weights; ``paths`` is SPOS's
uniform path sampling; ``greedy`` is GreedyNAS's multi-path rejection with a candidate pool;
``training`` trains and saves a supernet through the spine's trainer.
"""

from jointnas.supernet.greedy import CandidatePool, GreedyPaths
from jointnas.supernet.model import Supernet, build_supernet
from jointnas.supernet.paths import PathSampler, UniformPaths

__all__ = [
    "CandidatePool",
    "GreedyPaths",
    "PathSampler",
    "Supernet",
    "UniformPaths",
    "build_supernet",
]
