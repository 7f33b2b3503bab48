"""The staged run behind ``jointnas run``: JointNAS (Dai et al., 2020) end to end, on any space.

1. coarse: feasible candidates (the limit is analytic, so an infeasible one is never trained),
   each scored by the evaluator at the early-stop budget, in study NAME;
2. predictor: fitted on the coarse trials and saved in the output directory;
3. fine: the vectorised adaptive genetic search scored by the predictor, no training; each
   generation's top candidates are written to study NAME.fine as predicted trials;
4. final: the best predicted candidates trained for the full budget in study NAME.final, true
   and predicted accuracy side by side; best arch/recipe JSON and safetensors weights in the
   output directory.

All state lives in the Optuna storage (plus files the storage points to), so rerunning the same
command resumes at the first unfinished stage; ``stop_after`` ends a run early. The space is
whatever ``config.space`` names in the registry; this module knows only the ``Space`` contract.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from jointnas.errors import ConfigError, InfeasibleConstraintError
from jointnas.evaluators import TrainFromScratch
from jointnas.runs.config import STAGES, RunConfig
from jointnas.runs.objective import CandidateRejected, Limits, Objective
from jointnas.runs.reward import Reward
from jointnas.runs.stages import (
    final_stage,
    fine_stage,
    predictor_stage,
    write_artifacts,
)
from jointnas.runs.workers import launch, shared_settings
from jointnas.samplers import CoarseSampler, FeasibleSampler, sample_feasible
from jointnas.samplers.feasible import Constraint
from jointnas.spaces.base import Space
from jointnas.spaces.registry import space_record
from jointnas.storage import keys
from jointnas.storage.backends import open_storage
from jointnas.storage.budget import coarse_done
from jointnas.storage.layout import open_stage_study
from jointnas.storage.supervise import drop_unneeded_retries
from jointnas.training.data import Dataset, load_dataset
from jointnas.training.trainer import TrainingDiverged

__all__ = ["STAGES", "RunConfig", "check_reachable", "coarse_done", "coarse_stage", "run"]


def check_reachable(
    space: Space, limits: Limits, task: dict[str, int], constraint: Constraint, seed: int
) -> None:
    """Refuse a limit below the cheapest candidate, naming the smallest reachable cost, or one
    so tight that random draws find no feasible candidate: checked before any trial exists, so
    a refused run leaves the storage as it was."""
    smallest = space.cost(space.decode(space.smallest_params()).arch, **task)
    values = limits.fixed_values(smallest)  # RegNet's limits scale with FLOPs: not monotone
    for (key, limit), value in zip(limits.active().items(), values, strict=True):
        if value > 0:
            reachable = smallest.mflops if key == "mflops" else getattr(smallest, key)
            raise InfeasibleConstraintError(
                f"--max-{key} {limit:g} is impossible: the smallest candidate of space "
                f"{space.key!r} needs {reachable:g} {key}"
            )
    try:
        sample_feasible(space.encoder, constraint, np.random.default_rng(seed))
    except InfeasibleConstraintError as exc:
        raise InfeasibleConstraintError(
            f"limits {limits.describe()} are too tight to search: {exc} (the smallest candidate "
            f"needs {smallest.mflops:g} mflops, {smallest.params} params)"
        ) from None


def stamp(space: Space, data: Dataset, seed: int, reward: Reward | None = None) -> dict[str, Any]:
    """Settings every study of a run carries: a rerun with others is refused, not mixed. The
    reward says what the studies' values are (None: accuracies)."""
    return {
        keys.REWARD: None if reward is None else reward.record(),
        keys.SPACE: space.key,
        keys.SPACE_RECORD: space_record(space),
        keys.SPACE_FINGERPRINT: space.fingerprint(),
        keys.DATASET: data.name,
        keys.TASK: {"num_classes": data.num_classes, "in_channels": data.in_channels},
        keys.SEED: seed,
    }


def check_reward_unchanged(
    storage: optuna.storages.BaseStorage, name: str, record: dict[str, Any] | None
) -> None:
    """Refuse to resume run ``name`` with other reward settings than its trials' values have:
    reward and accuracy values (or rewards of two targets) would mix in one study. A study
    made before the reward option existed has no reward attr; its values are accuracies."""
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return
    attrs = study.user_attrs
    if keys.REWARD in attrs:
        stored = attrs[keys.REWARD]
    elif keys.SPACE in attrs and study.get_trials(deepcopy=False):
        stored = None
    else:
        return  # a new or foreign study: stamping (or its own checks) decide
    if stored != record:

        def what(r: dict[str, Any] | None) -> str:
            if r is None:
                return "accuracies (no --target-mflops)"
            return Reward(
                target_mflops=r["target_mflops"], alpha=r["alpha"], beta=r["beta"]
            ).describe()

        raise ConfigError(
            f"study {name!r} holds values of {what(stored)}, not of {what(record)}; resume it "
            "with the same reward options or use another --study name"
        )


def run(config: RunConfig, *, data: Dataset | None = None, progress: bool = True) -> optuna.Study:
    """Run (or resume) the search described by ``config``; return the coarse-stage study (the
    fine and final studies are linked from it: ``jointnas.storage.layout.linked_study``)."""
    space = config.build_space()
    # fail fast, before the slower data loading; beats let a killed run's trial be retried
    storage = open_storage(config.storage, heartbeat=config.heartbeat)
    data = load_dataset(config.dataset, seed=config.seed) if data is None else data
    limits = config.limits
    evaluator = TrainFromScratch(
        data=data,
        epochs=config.epochs,
        device=config.device,
        batch_size=config.batch_size,
        train_kwargs={"schedule_epochs": config.schedule_epochs or config.epochs},
    )
    reward = config.reward
    objective = Objective(
        space=space, evaluator=evaluator, limits=limits, seed=config.seed, reward=reward
    )
    task = {"num_classes": data.num_classes, "in_channels": data.in_channels}
    check_reachable(space, limits, task, objective.constraint, config.seed)
    common = stamp(space, data, config.seed, reward)
    check_reward_unchanged(storage, config.study_name, common[keys.REWARD])
    study = coarse_stage(config, space, storage, objective, common, progress)
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
    fine = open_stage_study(storage, config.study_name, keys.FINE, common)
    top = fine_stage(
        study,
        fine,
        predictor,
        limits,
        generations=config.fine_generations,
        population=config.fine_population,
        children=config.fine_children,
        record=config.fine_record,
        seed=config.seed,
        reward=reward,
        progress=progress,
    )
    if config.stop_after == "fine" or config.final_top == 0 or config.final_epochs == 0:
        return study
    final = dataclasses.replace(
        objective,
        stage=keys.FINAL,
        evaluator=dataclasses.replace(
            evaluator,
            epochs=config.final_epochs,
            train_kwargs={"schedule_epochs": config.final_epochs},
        ),
        dedupe=False,  # one process; a killed final's RUNNING trial must not block its retrain
        weights_dir=str(out / "weights"),
        checkpoint_dir=str(out / "checkpoints"),  # a killed final training resumes mid-way
    )
    final_study = open_stage_study(
        storage,
        config.study_name,
        keys.FINAL,
        {**common, keys.FINAL_EPOCHS: config.final_epochs},
        sampler=optuna.samplers.RandomSampler(seed=config.seed),
        pruner=optuna.pruners.NopPruner(),  # never judge a full training by early-stopped ones
    )
    finals = final_stage(
        final_study, top, predictor, final, top=config.final_top, progress=progress
    )
    write_artifacts(out, space, finals)
    return study


def coarse_stage(
    config: RunConfig,
    space: Space,
    storage: optuna.storages.BaseStorage,
    objective: Objective,
    common: dict[str, Any],
    progress: bool,
) -> optuna.Study:
    """Score ``config.trials`` feasible candidates (resuming: only the missing ones): the first
    few quasi-random, the rest proposed by the coarse sampler's surrogate (expected improvement
    over feasible candidates checked by the space's vectorised cost)."""
    sampler: optuna.samplers.BaseSampler
    if config.coarse_sampler == "random":  # uniform feasible candidates (e.g. a recorded table)
        sampler = FeasibleSampler(
            search_space=space.distributions, constraint=objective.constraint, seed=config.seed
        )
    else:
        sampler = CoarseSampler(
            search_space=space.distributions,
            constraint_batch=objective.constraint_batch,
            n_startup_trials=config.startup_trials,
            seed=config.seed,
        )
    study = open_stage_study(
        storage,
        config.study_name,
        keys.COARSE,
        {
            **common,
            keys.EPOCHS: config.epochs,
            keys.SCHEDULE_EPOCHS: config.schedule_epochs or config.epochs,
        },
        sampler=sampler,
        pruner=optuna.pruners.NopPruner(),
    )
    study.set_user_attr(keys.LIMITS, config.limits.describe())
    study.set_user_attr(keys.RUN, shared_settings(config))  # what `jointnas worker` joins with
    if config.workers > 1 and coarse_done(study) < config.trials:
        launch(
            config,
            workers=config.workers,
            done=lambda: coarse_done(study),
            progress=progress,
            study=study,
        )
    remaining = config.trials - coarse_done(study)  # workers that died leave work to us
    if remaining > 0:
        study.optimize(
            objective,
            n_trials=remaining,
            catch=(TrainingDiverged, CandidateRejected),
            callbacks=[StopAtBudget(config.trials)],
            show_progress_bar=progress,
        )
    drop_unneeded_retries(study, config.trials)  # no WAITING retry left for a later stage
    return study


class StopAtBudget:
    """Stop ``study.optimize`` once the study holds ``trials`` budget-counting coarse trials:
    other processes on the same storage add trials too, so each worker's own count is not
    enough."""

    def __init__(self, trials: int) -> None:
        self.trials = trials

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if coarse_done(study) >= self.trials:
            study.stop()
