"""The coarse stage: early-stopped trainings of feasible candidates in study NAME.

Split in two so a worker process runs only the loop. Whoever starts a run (``pipeline.run``)
checks the limits once, stamps the study and stores the settings workers join with
(``open_coarse_study``); then it and every ``jointnas worker`` (``workers.work``) run the same
``coarse_loop`` on the stamped study until it holds ``trials`` budget-counting trials.
"""

from __future__ import annotations

from typing import Any

import optuna

from jointnas.runs.config import RunConfig
from jointnas.runs.context import RunContext
from jointnas.runs.objective import CandidateRejected, Objective
from jointnas.samplers import CoarseSampler, FeasibleSampler
from jointnas.spaces.base import Space
from jointnas.storage import keys
from jointnas.storage.budget import coarse_done
from jointnas.storage.supervise import drop_unneeded_retries
from jointnas.training.trainer import TrainingDiverged

#: RunConfig fields a worker takes from the study; it brings only storage, study and device
SHARED = (
    "space",
    "space_options",
    "dataset",
    "max_mflops",
    "max_params",
    "max_acts",
    "regnet_limits",
    "target_mflops",
    "reward_alpha",
    "reward_beta",
    "trials",
    "epochs",
    "schedule_epochs",
    "seed",
    "batch_size",
    "fix_arch",
    "coarse_sampler",
    "startup_trials",
    "heartbeat",
)


def shared_settings(config: RunConfig) -> dict[str, Any]:
    """The settings stored on the coarse study for workers to join with (``keys.RUN``)."""
    return {k: getattr(config, k) for k in SHARED}


def coarse_objective(config: RunConfig, ctx: RunContext, space: Space) -> Objective:
    """The coarse stage's objective: ``config.epochs`` of a ``schedule_epochs`` schedule."""
    return Objective(
        space=space,
        evaluator=ctx.evaluator(config.epochs, schedule_epochs=config.schedule_epochs),
        limits=config.limits,
        seed=config.seed,
        reward=config.reward,
    )


def coarse_sampler(config: RunConfig, objective: Objective) -> optuna.samplers.BaseSampler:
    """Uniform feasible candidates (``coarse_sampler="random"``, e.g. a recorded table) or the
    coarse sampler: a quasi-random start, then expected improvement over feasible candidates
    checked by the space's vectorised cost."""
    space = objective.space
    if config.coarse_sampler == "random":
        return FeasibleSampler(
            search_space=space.distributions, constraint=objective.constraint, seed=config.seed
        )
    return CoarseSampler(
        search_space=space.distributions,
        constraint_batch=objective.constraint_batch,
        n_startup_trials=config.startup_trials,
        seed=config.seed,
    )


def open_coarse_study(
    config: RunConfig, ctx: RunContext, objective: Objective, common: dict[str, Any]
) -> optuna.Study:
    """Create or resume study NAME, stamped with ``common`` and the coarse budget; store the
    limits and the settings workers join with."""
    study = ctx.open_study(
        keys.COARSE,
        {
            **common,
            keys.EPOCHS: config.epochs,
            keys.SCHEDULE_EPOCHS: config.schedule_epochs or config.epochs,
        },
        sampler=coarse_sampler(config, objective),
        pruner=optuna.pruners.NopPruner(),
    )
    study.set_user_attr(keys.LIMITS, config.limits.describe())
    study.set_user_attr(keys.RUN, shared_settings(config))  # what `jointnas worker` joins with
    return study


def coarse_loop(
    study: optuna.Study, objective: Objective, trials: int, *, progress: bool = True
) -> optuna.Study:
    """Train candidates until ``study`` holds ``trials`` budget-counting coarse trials (other
    processes add trials too); then drop WAITING retries the budget no longer needs."""
    remaining = trials - coarse_done(study)
    if remaining > 0:
        study.optimize(
            objective,
            n_trials=remaining,
            catch=(TrainingDiverged, CandidateRejected),
            callbacks=[StopAtBudget(trials)],
            show_progress_bar=progress,
        )
    drop_unneeded_retries(study, trials)  # no WAITING retry left for a later stage
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
