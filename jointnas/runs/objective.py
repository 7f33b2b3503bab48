"""The Optuna objective of a search: suggest -> cost -> (feasible?) -> evaluate.

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
from jointnas.errors import JointNASError
from jointnas.evaluators.base import Evaluator
from jointnas.runs.reward import Reward
from jointnas.spaces.base import Space
from jointnas.spaces.nets.blocks import Cost
from jointnas.storage import keys
from jointnas.training.trainer import TrainingDiverged

LIMIT_KEYS = keys.COST_KEYS


class CandidateRejected(JointNASError):
    """A trial's candidate breaks the constraint, so it is not trained (e.g. enqueued by hand)."""


class DuplicateCandidate(CandidateRejected):
    """Another trial of the same stage trains or trained this exact candidate (two workers drew
    it at the same moment): this trial is not trained and does not use up the budget."""


#: constraint names of RegNet's complexity limits (``Limits(regnet=True)``)
REGNET_KEYS = ("regnet_acts", "regnet_params")


def regnet_max_acts(flops: Any) -> Any:
    """RegNet's activation cap for a model of ``flops`` multiply-adds: 6.5 * sqrt(f) M
    activations, f in GFLOPs (Radosavovic et al., 2020, the design-space comparison's
    constraint), as a count: 6.5e6 * sqrt(flops / 1e9). Floats or per-candidate arrays."""
    return 6.5e6 * np.sqrt(np.asarray(flops, dtype=float) / 1e9)


def regnet_max_params(flops: Any) -> Any:
    """RegNet's parameter cap for a model of ``flops`` multiply-adds: 3 + 5.5 * f M params,
    f in GFLOPs, as a count: 3e6 + 5.5e6 * flops / 1e9. Floats or per-candidate arrays."""
    return 3e6 + 5.5e6 * np.asarray(flops, dtype=float) / 1e9


def _plain(value: Any) -> Any:
    """A 0-d numpy result as a Python float (JSON, Optuna); arrays as they are."""
    return float(value) if np.ndim(value) == 0 else value


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Resource limits; ``None`` means unconstrained. Constraint values are cost - limit.

    ``regnet`` adds RegNet's complexity limits, relative to each candidate's own FLOPs f (in
    GF): acts <= 6.5 * sqrt(f) M and params <= 3 + 5.5 * f M, as two more constraints
    (``REGNET_KEYS``) whose values are counts like ``--max-acts``'s: acts - 6.5e6 * sqrt(f)
    and params - (3e6 + 5.5e6 * f)."""

    mflops: float | None = None
    params: int | None = None
    acts: int | None = None
    regnet: bool = False

    def __post_init__(self) -> None:
        for key in LIMIT_KEYS:
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise ValueError(f"--max-{key} must be > 0, got {value}")
        if not isinstance(self.regnet, bool):
            raise ValueError(f"regnet must be True or False, got {self.regnet!r}")

    def active(self) -> dict[str, float]:
        """The fixed limits that are set (name -> limit); RegNet's come after them."""
        return {k: float(getattr(self, k)) for k in LIMIT_KEYS if getattr(self, k) is not None}

    def names(self) -> list[str]:
        """Constraint names, in ``values()`` order: the fixed limits, then RegNet's."""
        return [*self.active(), *(REGNET_KEYS if self.regnet else ())]

    def fixed_values(self, c: Cost) -> list[Any]:
        """cost - limit of each fixed limit, in ``active()`` order."""
        measured = {"mflops": c.mflops, "params": c.params, "acts": c.acts}
        return [measured[k] - limit for k, limit in self.active().items()]

    def values(self, c: Cost) -> list[Any]:
        """Constraint values (feasible when all <= 0), in ``names()`` order; floats for one
        candidate, arrays for a batch (``Space.cost_batch``)."""
        values = self.fixed_values(c)
        if self.regnet:
            values.append(_plain(np.asarray(c.acts, dtype=float) - regnet_max_acts(c.flops)))
            values.append(_plain(np.asarray(c.params, dtype=float) - regnet_max_params(c.flops)))
        return values

    def describe(self) -> dict[str, Any]:
        """JSON-able, for people and the study attrs: each limit, RegNet's as formulas."""
        out: dict[str, Any] = dict(self.active())
        if self.regnet:
            out["regnet_acts"] = "acts <= 6.5 * sqrt(GFLOPs) M"
            out["regnet_params"] = "params <= 3 + 5.5 * GFLOPs M"
        return out


def params_key(params: Mapping[str, Any]) -> str:
    """A candidate's identity as text: equal params, equal key (order and types aside)."""
    return json.dumps(dict(params), sort_keys=True, default=str)


def trial_seed(seed: int, number: int) -> int:
    """A per-trial seed derived from the study seed: stable across resumes and workers."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


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
        values = self.limits.values(c)
        if not values:
            return np.zeros((len(X), 0))
        return np.stack([np.asarray(v, dtype=float) for v in values], axis=1)

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
        seed = trial_seed(self.seed, trial.number)
        checkpoint = None
        if self.checkpoint_dir is not None:
            digest = int(hashlib.sha256(params_key(trial.params).encode()).hexdigest()[:15], 16)
            seed = trial_seed(self.seed, digest)
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
