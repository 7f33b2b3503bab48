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
import sys
from pathlib import Path
from typing import Any

import optuna

from jointnas.errors import ConfigError
from jointnas.runs.coarse import coarse_loop, coarse_objective, open_coarse_study
from jointnas.runs.config import STAGES, RunConfig
from jointnas.runs.context import RunContext, check_reachable, largest_resolution
from jointnas.runs.reward import Reward
from jointnas.runs.stages import (
    final_stage,
    fine_stage,
    predictor_stage,
    write_artifacts,
)
from jointnas.runs.workers import launch
from jointnas.storage import keys
from jointnas.storage.budget import coarse_done
from jointnas.training.data import Dataset

__all__ = ["STAGES", "RunConfig", "run"]


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
    ctx = RunContext.open(config, data=data, image_size=largest_resolution(space))
    if progress:  # which way the data is held (auto picks by size): say it before training
        print(f"data: {ctx.data!r}", file=sys.stderr)
    limits, reward = config.limits, config.reward
    objective = coarse_objective(config, ctx, space)
    check_reachable(space, limits, ctx.task, objective.constraint, config.seed)
    common = ctx.stamp(space, reward)
    check_reward_unchanged(ctx.storage, config.study_name, common[keys.REWARD])
    study = open_coarse_study(config, ctx, objective, common)
    if config.workers > 1 and coarse_done(study) < config.trials:
        launch(
            config,
            workers=config.workers,
            done=lambda: coarse_done(study),
            progress=progress,
            study=study,
        )
    coarse_loop(study, objective, config.trials, progress=progress)  # what dead workers left
    if config.stop_after == "coarse":
        return study
    out = Path(config.out)
    predictor = predictor_stage(
        study, space, ctx.data, kind=config.predictor, seed=config.seed, out=out
    )
    if predictor is None:
        print("too few completed coarse trials to fit a predictor; stopping after coarse")
        return study
    if config.stop_after == "predictor":
        return study
    fine = ctx.open_study(keys.FINE, common)
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
        evaluator=ctx.evaluator(config.final_epochs),
        dedupe=False,  # one process; a killed final's RUNNING trial must not block its retrain
        weights_dir=str(out / "weights"),
        checkpoint_dir=str(out / "checkpoints"),  # a killed final training resumes mid-way
    )
    final_study = ctx.open_study(
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
