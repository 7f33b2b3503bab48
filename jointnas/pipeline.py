"""The staged run behind ``jointnas run``: FBNetV3's JointNAS end to end.

1. coarse: feasible candidates (the limit is analytic, so an infeasible one is never trained),
   each trained for the early-stop budget and recorded in the study;
2. predictor: fitted on the coarse trials and saved in the output directory;
3. fine: the vectorised adaptive genetic search scored by the predictor, no training; each
   generation's top candidates are written to the study as predicted trials;
4. final: the best predicted candidates trained for the full budget, true and predicted
   accuracy side by side; best arch/recipe JSON and safetensors weights in the output directory.

All state lives in the Optuna storage (plus files the storage points to), so rerunning the same
command resumes at the first unfinished stage; ``stop_after`` ends a run early.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna

from jointnas.cost import cost
from jointnas.data import Dataset, load_dataset
from jointnas.errors import ConfigError, InfeasibleConstraintError
from jointnas.objective import CandidateRejected, Limits, Objective
from jointnas.predictors import XGBoostPredictor
from jointnas.samplers import CoarseSampler, FeasibleSampler, sample_feasible
from jointnas.samplers.feasible import Constraint
from jointnas.spaces.fbnetv3 import PRESETS, FBNetV3Space
from jointnas.stages import (
    counts_toward_budget,
    final_stage,
    fine_stage,
    predictor_stage,
    write_artifacts,
)
from jointnas.storage import check_study_attrs, open_storage
from jointnas.train import TrainingDiverged, resolve_device
from jointnas.workers import RUN_ATTR, check_multiprocess_storage, launch, shared_settings

STAGES = ("coarse", "predictor", "fine", "final")


def is_coarse(trial: optuna.trial.FrozenTrial) -> bool:
    return trial.user_attrs.get("stage", "coarse") == "coarse"


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
    predictor: str = "xgboost"
    fine_generations: int = 20
    fine_population: int = 64
    fine_children: int = 2048
    fine_record: int = 5
    final_top: int = 3
    final_epochs: int = 6
    out: str = "jointnas-out"
    stop_after: str = "final"
    #: architecture params to pin (AutoTrain: only the recipe is searched); None searches both
    fix_arch: dict | None = None
    #: "coarse" (Sobol start, then predictor-ranked) or "random" (uniform feasible candidates)
    coarse_sampler: str = "coarse"
    #: seconds between a running trial's heartbeats; None: no heartbeat (killed trials stay
    #: RUNNING and are not retrained)
    heartbeat: int | None = 60
    #: local worker processes for the coarse stage (needs PostgreSQL or a journal file)
    workers: int = 1

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError(f"unknown preset {self.preset!r}; choose one of {sorted(PRESETS)}")
        for name in ("trials", "epochs", "batch_size", "workers"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}"
                )
        if self.stop_after not in STAGES:
            raise ConfigError(f"unknown stage {self.stop_after!r}; choose one of {list(STAGES)}")
        if self.coarse_sampler not in ("coarse", "random"):
            raise ConfigError(
                f"coarse_sampler must be coarse or random, not {self.coarse_sampler!r}"
            )
        if self.predictor not in ("xgboost", "mlp"):
            raise ConfigError(f"--predictor must be xgboost or mlp, got {self.predictor!r}")
        for name in ("fine_population", "fine_children"):
            if getattr(self, name) < 2:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 2")
        for name in ("fine_generations", "fine_record", "final_top", "final_epochs"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 0")
        if self.heartbeat is not None and self.heartbeat < 1:
            raise ConfigError(f"heartbeat must be >= 1 second, got {self.heartbeat}")
        if self.schedule_epochs is not None and self.schedule_epochs < self.epochs:
            raise ConfigError(
                f"schedule_epochs ({self.schedule_epochs}) must be >= epochs ({self.epochs})"
            )
        if not self.study_name.strip():
            raise ConfigError("--study must be a non-empty name")
        check_multiprocess_storage(self.storage, self.workers)
        try:
            Limits(mflops=self.max_mflops, params=self.max_params)
            resolve_device(self.device)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def space(self) -> FBNetV3Space:
        try:
            return FBNetV3Space(preset=self.preset, fix=self.fix_arch)
        except ValueError as exc:
            raise ConfigError(f"--fix-arch: {exc}") from None

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
    space = config.space()
    # fail fast, before the slower data loading; beats let a killed run's trial be retried
    storage = open_storage(config.storage, heartbeat=config.heartbeat)
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
    study = coarse_stage(config, space, data, storage, objective, constraint, progress)
    if config.stop_after == "coarse":
        return study
    out = Path(config.out)
    predictor = predictor_stage(
        study, space, data, kind=config.predictor, seed=config.seed, out=out
    )
    if predictor is None:
        print("too few completed coarse trials to fit a predictor; stopping after coarse")
        return study
    if config.stop_after == "predictor":
        return study
    top = fine_stage(
        study,
        predictor,
        limits,
        generations=config.fine_generations,
        population=config.fine_population,
        children=config.fine_children,
        record=config.fine_record,
        seed=config.seed,
        progress=progress,
    )
    if config.stop_after == "fine" or config.final_top == 0 or config.final_epochs == 0:
        return study
    final = dataclasses.replace(
        objective,
        stage="final",
        dedupe=False,  # one process; a killed final's RUNNING trial must not block its retrain
        epochs=config.final_epochs,
        train_kwargs={"schedule_epochs": config.final_epochs},
        weights_dir=str(out / "weights"),
        checkpoint_dir=str(out / "checkpoints"),  # a killed final training resumes mid-way
    )
    finals = final_stage(
        study, storage, top, predictor, final, top=config.final_top, progress=progress
    )
    write_artifacts(out, space, finals)
    return study


def coarse_stage(
    config: RunConfig,
    space: FBNetV3Space,
    data: Dataset,
    storage: optuna.storages.BaseStorage,
    objective: Objective,
    constraint: Constraint,
    progress: bool,
) -> optuna.Study:
    """Train ``config.trials`` feasible candidates (resuming: only the missing ones): the first
    half quasi-random, the rest ranked by an XGBoost predictor refitted as trials complete."""
    sampler: optuna.samplers.BaseSampler
    if config.coarse_sampler == "random":  # uniform feasible candidates (e.g. a recorded table)
        sampler = FeasibleSampler(
            search_space=space.distributions, constraint=constraint, seed=config.seed
        )
    else:
        sampler = CoarseSampler(
            search_space=space.distributions,
            constraint=constraint,
            predictor=XGBoostPredictor(space=space, seed=config.seed),
            n_startup_trials=max(4, config.trials // 2),
            seed=config.seed,
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
            "jointnas:space_fixed": space.pinned,
            "jointnas:dataset": data.name,
            "jointnas:task": {"num_classes": data.num_classes, "in_channels": data.in_channels},
            "jointnas:seed": config.seed,
            "jointnas:epochs": config.epochs,
            "jointnas:schedule_epochs": config.schedule_epochs or config.epochs,
        },
    )
    study.set_user_attr("jointnas:limits", config.limits.active())
    study.set_user_attr(RUN_ATTR, shared_settings(config))  # what `jointnas worker` joins with
    if config.workers > 1 and coarse_done(study) < config.trials:
        launch(config, workers=config.workers, done=lambda: coarse_done(study), progress=progress)
    remaining = config.trials - coarse_done(study)  # workers that died leave work to us
    if remaining > 0:
        study.optimize(
            objective,
            n_trials=remaining,
            catch=(TrainingDiverged, CandidateRejected),
            callbacks=[StopAtBudget(config.trials)],
            show_progress_bar=progress,
        )
    return study


def coarse_done(study: optuna.Study) -> int:
    """Coarse trials that use up the budget (see ``counts_toward_budget``)."""
    return sum(counts_toward_budget(t) and is_coarse(t) for t in study.get_trials(deepcopy=False))


class StopAtBudget:
    """Stop ``study.optimize`` once the study holds ``trials`` budget-counting coarse trials:
    other processes on the same storage add trials too, so each worker's own count is not
    enough."""

    def __init__(self, trials: int) -> None:
        self.trials = trials

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if coarse_done(study) >= self.trials:
            study.stop()
