"""The staged run behind ``jointnas run``.

This first version runs the coarse stage with feasible random candidates: every candidate
satisfies the resource limit before it is trained (the limit is analytic), is trained for the
early-stop budget, and is recorded in the study. The predictor, fine search and final training
plug in here as further stages. All state lives in the Optuna storage, so rerunning the same
command resumes: it only trains the trials still missing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import optuna

from jointnas.cost import cost
from jointnas.data import Dataset, load_dataset
from jointnas.errors import ConfigError, InfeasibleConstraintError
from jointnas.objective import CandidateRejected, Limits, Objective
from jointnas.samplers import FeasibleSampler, sample_feasible
from jointnas.samplers.feasible import Constraint
from jointnas.space.fbnetv3 import PRESETS, FBNetV3Space
from jointnas.storage import check_study_attrs, open_storage
from jointnas.train import TrainingDiverged, resolve_device


def counts_toward_budget(trial: optuna.trial.FrozenTrial) -> bool:
    """Completed, pruned and deliberately failed trials (diverged, infeasible: they carry a
    ``fail_reason``) use up the budget; a trial cut off by Ctrl-C or a crash is retried."""
    state = trial.state
    if state == optuna.trial.TrialState.FAIL:
        return "fail_reason" in trial.user_attrs
    return state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything ``jointnas run`` needs; validated on construction."""

    storage: str = "sqlite:///jointnas.db"
    study_name: str = "jointnas"
    preset: str = "small"
    dataset: str = "mnist5k"
    max_mflops: float | None = 2.0
    max_params: int | None = None
    trials: int = 20
    epochs: int = 2
    #: cosine schedule length when ``epochs`` stops early (calibrated runs); default ``epochs``
    schedule_epochs: int | None = None
    seed: int = 0
    device: str = "auto"
    batch_size: int = 128

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError(f"unknown preset {self.preset!r}; choose one of {sorted(PRESETS)}")
        for name in ("trials", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}"
                )
        if self.schedule_epochs is not None and self.schedule_epochs < self.epochs:
            raise ConfigError(
                f"schedule_epochs ({self.schedule_epochs}) must be >= epochs ({self.epochs})"
            )
        if not self.study_name.strip():
            raise ConfigError("--study must be a non-empty name")
        try:
            Limits(mflops=self.max_mflops, params=self.max_params)
            resolve_device(self.device)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    @property
    def limits(self) -> Limits:
        return Limits(mflops=self.max_mflops, params=self.max_params)


def check_reachable(
    space: FBNetV3Space, limits: Limits, data: Dataset, constraint: Constraint, seed: int
) -> None:
    """Refuse a limit below the cheapest candidate, naming the smallest reachable cost, or one
    so tight that random draws find no feasible candidate: checked before any trial exists, so
    a refused run leaves the storage as it was."""
    smallest = cost(
        space.decode(space.smallest_params()).arch,
        num_classes=data.num_classes,
        in_channels=data.in_channels,
    )
    values = limits.values(smallest)
    for (key, limit), value in zip(limits.active().items(), values, strict=True):
        if value > 0:
            reachable = smallest.mflops if key == "mflops" else getattr(smallest, key)
            raise InfeasibleConstraintError(
                f"--max-{key} {limit:g} is impossible: the smallest candidate of the "
                f"{space.preset.name!r} space needs {reachable:g} {key}"
            )
    try:
        sample_feasible(space.encoder, constraint, np.random.default_rng(seed))
    except InfeasibleConstraintError as exc:
        raise InfeasibleConstraintError(
            f"limits {limits.active()} are too tight to search: {exc} (the smallest candidate "
            f"needs {smallest.mflops:g} mflops, {smallest.params} params)"
        ) from None


def run(config: RunConfig, *, data: Dataset | None = None, progress: bool = True) -> optuna.Study:
    """Run (or resume) the search described by ``config``; return the Optuna study."""
    space = FBNetV3Space(preset=config.preset)
    storage = open_storage(config.storage)  # fail fast, before the slower data loading
    data = load_dataset(config.dataset, seed=config.seed) if data is None else data
    limits = config.limits
    objective = Objective(
        space=space,
        data=data,
        limits=limits,
        epochs=config.epochs,
        seed=config.seed,
        device=config.device,
        batch_size=config.batch_size,
        train_kwargs={"schedule_epochs": config.schedule_epochs or config.epochs},
    )

    def constraint(params: dict) -> list[float]:
        return limits.values(objective.measure(space.decode(params).arch))

    check_reachable(space, limits, data, constraint, config.seed)

    sampler = FeasibleSampler(
        search_space=space.distributions, constraint=constraint, seed=config.seed
    )
    study = optuna.create_study(
        storage=storage,
        study_name=config.study_name,
        direction="maximize",
        sampler=sampler,
        pruner=optuna.pruners.NopPruner(),
        load_if_exists=True,
    )
    check_study_attrs(
        study,
        {
            "jointnas:space": space.name,
            "jointnas:space_fingerprint": space.fingerprint(),
            "jointnas:dataset": data.name,
            "jointnas:task": {"num_classes": data.num_classes, "in_channels": data.in_channels},
            "jointnas:seed": config.seed,
            "jointnas:epochs": config.epochs,
            "jointnas:schedule_epochs": config.schedule_epochs or config.epochs,
        },
    )
    study.set_user_attr("jointnas:limits", limits.active())
    done = sum(counts_toward_budget(t) for t in study.get_trials(deepcopy=False))
    remaining = config.trials - done
    if remaining > 0:
        study.optimize(
            objective,
            n_trials=remaining,
            catch=(TrainingDiverged, CandidateRejected),
            callbacks=[StopAtBudget(config.trials)],
            show_progress_bar=progress,
        )
    return study


class StopAtBudget:
    """Stop ``study.optimize`` once the study holds ``trials`` budget-counting trials: other
    processes on the same storage add trials too, so each worker's own count is not enough."""

    def __init__(self, trials: int) -> None:
        self.trials = trials

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if sum(counts_toward_budget(t) for t in study.get_trials(deepcopy=False)) >= self.trials:
            study.stop()
