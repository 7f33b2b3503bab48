"""How a trial gets its accuracy, as a part of its own.

The Optuna objective (``jointnas.runs.objective.Objective``) does what every candidate needs
whatever scores it: suggest, decode, analytic cost, constraints, user attrs, duplicate guard,
seeds, checkpoint paths, weights files. It then hands the decoded candidate to an
``Evaluator``, which only answers "how good is it?": train it from scratch
(``TrainFromScratch``), or, for a one-shot supernet, inherit its weights, recalibrate BatchNorm
and evaluate without training.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import optuna
from torch import nn

from jointnas.spaces.base import Candidate, Space


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """What an evaluator found: the trial's value and what the objective records beside it."""

    value: float
    #: per-epoch (or per-step) validation accuracy; reported as intermediate values
    curve: tuple[float, ...] = ()
    #: extra JSON-able trial user attrs (train_seconds, images_per_s, ...)
    attrs: Mapping[str, Any] = field(default_factory=dict)
    #: the evaluated network, when there is one worth saving as weights
    model: nn.Module | None = field(default=None, repr=False, compare=False)
    #: epochs restored from a checkpoint instead of computed in this call
    resumed_epochs: int = 0


@runtime_checkable
class Evaluator(Protocol):
    """Scores one decoded candidate. ``num_classes`` / ``in_channels`` size the networks (and
    so the analytic cost the objective computes)."""

    @property
    def num_classes(self) -> int: ...

    @property
    def in_channels(self) -> int: ...

    def evaluate(
        self,
        space: Space,
        candidate: Candidate,
        *,
        seed: int,
        trial: optuna.trial.BaseTrial | None = None,
        checkpoint: Path | None = None,
    ) -> Evaluation:
        """Score ``candidate`` of ``space``. ``seed`` is the trial's; ``trial`` receives
        intermediate values (and may prune); ``checkpoint`` is where resumable state goes.
        Raises ``jointnas.TrainingDiverged`` when the candidate cannot be scored."""
        ...
