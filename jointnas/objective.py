"""The Optuna objective of a search: suggest -> cost -> (feasible?) -> build -> train.

Each trial records what a dashboard or a predictor needs: the candidate's cost as user attrs,
the constraint both as Optuna 5's ``set_constraint`` and as the older ``constraints`` system attr
that optuna-dashboard 0.21 shows, and the per-epoch validation curve (intermediate values and a
user attr). A diverged training fails only its own trial, with the reason kept.
"""

from __future__ import annotations

import hashlib
import json
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
from jointnas.blocks import Cost
from jointnas.cost import cost
from jointnas.data import Dataset
from jointnas.errors import JointNASError
from jointnas.model import build_model
from jointnas.spaces.base import Space
from jointnas.train import TrainingDiverged, train

LIMIT_KEYS = ("mflops", "params", "acts")


class CandidateRejected(JointNASError):
    """A trial's candidate breaks the constraint, so it is not trained (e.g. enqueued by hand)."""


class DuplicateCandidate(CandidateRejected):
    """Another trial of the same stage trains or trained this exact candidate (two workers drew
    it at the same moment): this trial is not trained and does not use up the budget."""


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Resource limits; ``None`` means unconstrained. Constraint values are cost - limit."""

    mflops: float | None = None
    params: int | None = None
    acts: int | None = None

    def __post_init__(self) -> None:
        for key in LIMIT_KEYS:
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise ValueError(f"--max-{key} must be > 0, got {value}")

    def active(self) -> dict[str, float]:
        return {k: float(getattr(self, k)) for k in LIMIT_KEYS if getattr(self, k) is not None}

    def values(self, c: Cost) -> list[float]:
        """Constraint values (feasible when all <= 0), in ``active()`` order."""
        measured = {"mflops": c.mflops, "params": c.params, "acts": c.acts}
        return [measured[k] - limit for k, limit in self.active().items()]


def params_key(params: Mapping[str, Any]) -> str:
    """A candidate's identity as text: equal params, equal key (order and types aside)."""
    return json.dumps(dict(params), sort_keys=True, default=str)


def trial_seed(seed: int, number: int) -> int:
    """A per-trial seed derived from the study seed: stable across resumes and workers."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def save_weights(model: torch.nn.Module, directory: str, trial: optuna.Trial) -> str:
    """Save a trained network's state dict as safetensors (loads without running code)."""
    from safetensors.torch import save_file

    path = Path(directory) / f"trial_{trial.number}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with files.atomic_path(path) as tmp:  # a killed run never leaves half a weights file
        save_file(state, str(tmp))
    return str(path)


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
    """Callable objective for ``study.optimize``: returns the final validation accuracy."""

    space: Space
    data: Dataset
    limits: Limits = field(default_factory=Limits)
    epochs: int = 2
    seed: int = 0
    device: str = "auto"
    batch_size: int = 128
    stage: str = "coarse"
    train_kwargs: Mapping[str, Any] = field(default_factory=dict)
    #: where to save each trained network as ``trial_<number>.safetensors`` (None: not saved)
    weights_dir: str | None = None
    #: skip a candidate that a RUNNING or COMPLETE trial of this stage already has (workers)
    dedupe: bool = True
    #: save each epoch under this directory, so a killed training of the same candidate resumes
    #: (its seed then comes from the candidate, not the trial number); None: no checkpoints
    checkpoint_dir: str | None = None

    def _refuse_twins(self, trial: optuna.Trial) -> None:
        """Workers that sample at the same moment can draw the same candidate. Each trial has
        stored its params and stage before this check, so of two twins at least the one that
        checks last sees the other and steps aside (both may: then neither uses budget)."""
        alive = (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.COMPLETE)
        for t in trial.study.get_trials(deepcopy=False, states=alive):
            if (
                t.number != trial.number
                and t.params == trial.params
                and t.user_attrs.get("stage", self.stage) == self.stage
                and not t.user_attrs.get("predicted")
                and "skipped" not in t.user_attrs
            ):
                reason = f"duplicate of trial {t.number} (same stage, same candidate); not trained"
                trial.set_user_attr("skipped", reason)
                raise DuplicateCandidate(reason)

    def measure(self, arch: Any) -> Cost:
        return cost(arch, num_classes=self.data.num_classes, in_channels=self.data.in_channels)

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        candidate = self.space.decode(self.space.suggest(trial))
        c = self.measure(candidate.arch)
        trial.set_user_attr("stage", self.stage)
        trial.set_user_attr("mflops", c.mflops)
        trial.set_user_attr("params", c.params)
        trial.set_user_attr("acts", c.acts)
        values = self.limits.values(c)
        if values:
            record_constraints(trial, list(self.limits.active()), values)
        if any(v > 0 for v in values):
            reason = f"infeasible: cost {c} breaks limits {self.limits.active()}; not trained"
            trial.set_user_attr("fail_reason", reason)
            raise CandidateRejected(reason)
        if self.dedupe:
            self._refuse_twins(trial)
        seed = trial_seed(self.seed, trial.number)
        checkpoint = None
        if self.checkpoint_dir is not None:
            digest = int(hashlib.sha256(params_key(trial.params).encode()).hexdigest()[:15], 16)
            seed = trial_seed(self.seed, digest)
            checkpoint = Path(self.checkpoint_dir) / f"{self.stage}-{digest:015x}.pt"
        model = build_model(candidate.arch, self.data.num_classes, self.data.in_channels, seed=seed)
        try:
            result = train(
                model,
                candidate.recipe,
                self.data,
                epochs=self.epochs,
                seed=seed,
                device=self.device,
                trial=trial,
                batch_size=self.batch_size,
                resolution=getattr(candidate.arch, "resolution", None),
                checkpoint=checkpoint,
                **self.train_kwargs,
            )
        except TrainingDiverged as exc:
            trial.set_user_attr("fail_reason", f"diverged: {exc}")
            raise
        if self.weights_dir is not None and result.evaluated is not None:
            trial.set_user_attr("weights", save_weights(result.evaluated, self.weights_dir, trial))
        if checkpoint is not None:  # the weights file (if any) now holds the result
            checkpoint.unlink(missing_ok=True)
            if result.resumed_epochs:
                trial.set_user_attr("resumed_epochs", result.resumed_epochs)
        trial.set_user_attr("val_acc_curve", list(result.val_acc))
        trial.set_user_attr("train_seconds", round(result.seconds, 3))
        trial.set_user_attr("images_per_s", round(result.train_images_per_s, 1))
        return result.final_acc
