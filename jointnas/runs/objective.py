"""The Optuna objective of a search: suggest -> cost -> (feasible?) -> evaluate.

Each trial records what a dashboard or a predictor needs: the candidate's cost as user attrs,
the constraint both as Optuna 5's ``set_constraint`` and as the older ``constraints`` system attr
that optuna-dashboard 0.21 shows, and the per-epoch validation curve (intermediate values and a
user attr). A diverged training fails only its own trial, with the reason kept.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from jointnas import files
from jointnas.constraints import Limits
from jointnas.errors import JointNASError
from jointnas.evaluators.base import Evaluator
from jointnas.runs.reward import Reward
from jointnas.spaces.base import Space
from jointnas.spaces.nets.blocks import Cost
from jointnas.storage import keys
from jointnas.training.trainer import TrainingDiverged


class CandidateRejected(JointNASError):
    """A trial's candidate breaks the constraint, so it is not trained (e.g. enqueued by hand)."""


class DuplicateCandidate(CandidateRejected):
    """Another trial of the same stage trains or trained this exact candidate (two workers drew
    it at the same moment): this trial is not trained and does not use up the budget."""


def save_weights(model: torch.nn.Module, directory: str, trial: optuna.Trial) -> str:
    """Save a trained network's state dict as ``trial_<number>.safetensors`` in ``directory``."""
    return str(files.write_weights(model, Path(directory) / f"trial_{trial.number}.safetensors"))


def record_constraints(trial: optuna.Trial, names: Sequence[str], values: Sequence[float]) -> None:
    """Store constraints for Optuna 5 samplers and for optuna-dashboard 0.21's column. A retried
    trial (heartbeat retry) arrives with its original's constraints: same candidate, same values,
    so those are not set again (Optuna would warn)."""
    storage = trial.study._storage  # Trial has no public reader/setter for system attrs
    have = storage.get_trial_system_attrs(trial._trial_id)
    for name, value in zip(names, values, strict=True):
        if f"constraints:{name}" not in have:
            trial.set_constraint(name, value)
    # optuna-dashboard 0.21 reads only this list
    storage.set_trial_system_attr(trial._trial_id, "constraints", list(values))


@dataclass(kw_only=True)
class Objective:
    """Callable objective for ``study.optimize``: space + evaluator + limits.

    The objective does what every candidate needs whatever scores it (cost, constraints, user
    attrs, duplicate guard, seeds, checkpoint path, weights file); ``evaluator`` only says how
    good the candidate is (``TrainFromScratch`` trains it; a supernet evaluator would inherit
    weights). Returns the evaluator's value (validation accuracy), or with ``reward`` the
    MnasNet reward of that accuracy and the candidate's MFLOPs, recording both as the user
    attrs ``accuracy`` and ``reward`` (intermediate values stay accuracies).
    """

    space: Space
    evaluator: Evaluator
    limits: Limits = field(default_factory=Limits)
    seed: int = 0
    stage: str = keys.COARSE
    #: where to save each evaluated network as ``trial_<number>.safetensors`` (None: not saved)
    weights_dir: str | None = None
    #: skip a candidate that a RUNNING or COMPLETE trial of this stage already has (workers)
    dedupe: bool = True
    #: save each epoch under this directory, so a killed training of the same candidate resumes
    #: (its seed then comes from the candidate, not the trial number); None: no checkpoints
    checkpoint_dir: str | None = None
    #: MnasNet's soft constraint: the trial's value is this reward of the accuracy (None: the
    #: accuracy itself)
    reward: Reward | None = None

    def _refuse_twins(self, trial: optuna.Trial) -> None:
        """Workers that sample at the same moment can draw the same candidate. Each trial has
        stored its params and stage before this check, so of two twins at least the one that
        checks last sees the other and steps aside (both may: then neither uses budget)."""
        alive = (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.COMPLETE)
        for t in trial.study.get_trials(deepcopy=False, states=alive):
            if (
                t.number != trial.number
                and t.params == trial.params
                and t.user_attrs.get(keys.STAGE, self.stage) == self.stage
                and not t.user_attrs.get(keys.PREDICTED)
                and keys.SKIPPED not in t.user_attrs
            ):
                reason = f"duplicate of trial {t.number} (same stage, same candidate); not trained"
                trial.set_user_attr(keys.SKIPPED, reason)
                raise DuplicateCandidate(reason)

    def measure(self, arch: Any) -> Cost:
        """The analytic cost of ``arch`` for the evaluator's task."""
        return self.space.cost(
            arch, num_classes=self.evaluator.num_classes, in_channels=self.evaluator.in_channels
        )

    def constraint(self, params: Mapping[str, Any]) -> list[float]:
        """Constraint values (cost - limit, feasible when <= 0) of a params dict: what the
        samplers are given, so they never propose what the objective would refuse."""
        return self.limits.values(self.measure(self.space.decode(params).arch))

    def constraint_batch(self, X: np.ndarray) -> np.ndarray:
        """``constraint`` on a batch of encoded rows, (rows, limits), by the space's vectorised
        cost: what lets the coarse sampler check thousands of candidates per proposal."""
        c = self.space.cost_batch(
            X, num_classes=self.evaluator.num_classes, in_channels=self.evaluator.in_channels
        )
        return self.limits.matrix(c)

    def __call__(self, trial: optuna.Trial) -> float:
        # first, so a process killed at any later point can be matched to its running trial
        trial.set_user_attr(keys.WORKER, f"{socket.gethostname()}:{os.getpid()}")
        candidate = self.space.decode(self.space.suggest(trial))
        c = self.measure(candidate.arch)
        trial.set_user_attr(keys.STAGE, self.stage)
        for key in keys.COST_KEYS:
            trial.set_user_attr(key, getattr(c, key))
        values = self.limits.values(c)
        if values:
            record_constraints(trial, self.limits.names(), values)
        if any(v > 0 for v in values):
            reason = f"infeasible: cost {c} breaks limits {self.limits.describe()}; not trained"
            trial.set_user_attr(keys.FAIL_REASON, reason)
            raise CandidateRejected(reason)
        if self.dedupe:
            self._refuse_twins(trial)
        seed = keys.trial_seed(self.seed, trial.number)
        checkpoint = None
        if self.checkpoint_dir is not None:
            key = keys.params_key(trial.params).encode()
            digest = int(hashlib.sha256(key).hexdigest()[:15], 16)
            seed = keys.trial_seed(self.seed, digest)
            checkpoint = Path(self.checkpoint_dir) / f"{self.stage}-{digest:015x}.pt"
        try:
            result = self.evaluator.evaluate(
                self.space, candidate, seed=seed, trial=trial, checkpoint=checkpoint
            )
        except TrainingDiverged as exc:
            trial.set_user_attr(keys.FAIL_REASON, f"diverged: {exc}")
            raise
        if self.weights_dir is not None and result.model is not None:
            trial.set_user_attr(keys.WEIGHTS, save_weights(result.model, self.weights_dir, trial))
        if checkpoint is not None:  # the weights file (if any) now holds the result
            checkpoint.unlink(missing_ok=True)
            if result.resumed_epochs:
                trial.set_user_attr(keys.RESUMED_EPOCHS, result.resumed_epochs)
        trial.set_user_attr(keys.CURVE, list(result.curve))
        for key, value in result.attrs.items():
            trial.set_user_attr(key, value)
        if self.reward is None:
            return result.value
        reward = self.reward(result.value, c.mflops)
        trial.set_user_attr(keys.ACCURACY, float(result.value))
        trial.set_user_attr(keys.REWARD_VALUE, reward)
        return reward
