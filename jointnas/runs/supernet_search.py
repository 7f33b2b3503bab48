"""Search a trained supernet as an Optuna study, then retrain the best subnets stand-alone.

One trial is one subnet: ``jointnas.runs.objective.Objective`` checks the analytic cost against the
limits (an infeasible trial is refused before it is scored), and ``InheritWeights`` scores it
with the supernet's weights and its own recalibrated BatchNorm. So constraints, the dashboard,
resuming and the final stage are the spine's. The search study is the run's study ``NAME``
(its trials carry stage ``supernet``: their values are supernet scores, not trainings); the
stand-alone retrainings of the ``final_top`` best are ``NAME.final``, whose ``predicted_acc``
is the supernet score, so ``final.csv`` shows supernet vs true accuracy side by side.

The first trials are the GreedyNAS candidate pool's feasible paths (best first), as GreedyNAS
initialises its evolutionary search; samplers: jointnas's ``AdaptiveGeneticSampler`` (default,
with the cost as its constraint, so it proposes only feasible subnets), Optuna's NSGA-II, or
feasible random.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import optuna
from optuna.trial import TrialState

from jointnas.constraints import Limits
from jointnas.errors import ConfigError
from jointnas.evaluators import InheritWeights
from jointnas.runs.context import LimitSettings, RunContext, RunSettings, check_reachable
from jointnas.runs.objective import CandidateRejected, Objective
from jointnas.runs.stages import final_stage, write_artifacts
from jointnas.samplers import AdaptiveGeneticSampler, FeasibleSampler
from jointnas.spaces.recipe import Recipe
from jointnas.spaces.shufflenet_choice import ShuffleChoiceSpace
from jointnas.storage import keys
from jointnas.storage.keys import params_key
from jointnas.supernet.model import Supernet
from jointnas.training.data import Dataset

SUPERNET = keys.SUPERNET  #: the stage of supernet-scored trials
SUPERNET_RECORD = keys.SUPERNET_RECORD  #: on the search study: which supernet scored it
SAMPLERS = ("genetic", "nsga2", "random")


@dataclass(frozen=True, kw_only=True)
class SearchConfig(RunSettings, LimitSettings):
    """How the supernet is searched and the winners retrained (``jointnas supernet search``);
    storage, data, seed, device and limits are the shared ``RunSettings``/``LimitSettings``."""

    study_name: str = "supernet"
    #: a supernet search is one process; heartbeats are for trainings other processes retry
    heartbeat: int | None = None
    trials: int = 200
    sampler: str = "genetic"
    population: int = 20
    #: training images each subnet's BN statistics are recomputed on (0: inherited ones)
    recal_images: int = 1024
    final_top: int = 3
    final_epochs: int = 10
    out: str = "jointnas-supernet"

    POSITIVE: ClassVar[tuple[str, ...]] = ("trials", "population")
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ("recal_images", "final_top", "final_epochs")

    def check(self) -> None:
        super().check()
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")


@dataclass(frozen=True)
class SearchResult:
    study: optuna.Study
    finals: list[optuna.trial.FrozenTrial]
    best: dict[str, Any] | None


class SupernetScores:
    """The supernet scores of the search's trials, as ``final_stage``'s predictor."""

    def __init__(self, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
        self.scores = {params_key(t.params): float(t.value) for t in trials}

    def predict(self, params: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return np.array([self.scores[params_key(p)] for p in params])


def supernet_digest(supernet: Supernet) -> str:
    """A hash of the supernet's weights and statistics: a study scored by one supernet is not
    resumed with another."""
    h = hashlib.sha256()
    for name, value in supernet.state_dict().items():
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def make_sampler(
    name: str, objective: Objective, *, seed: int, population: int
) -> optuna.samplers.BaseSampler:
    dists = objective.space.distributions
    if name == "genetic":
        return AdaptiveGeneticSampler(
            search_space=dists,
            constraint=objective.constraint,
            population_size=population,
            seed=seed,
        )
    if name == "random":
        return FeasibleSampler(search_space=dists, constraint=objective.constraint, seed=seed)
    # Optuna 5's NSGA-II reads the constraints the objective records (``set_constraint``)
    return optuna.samplers.NSGAIISampler(population_size=max(2, population), seed=seed)


def scored(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The completed supernet-scored trials of ``study``."""
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get(keys.STAGE) == SUPERNET
    ]


def search_supernet(
    supernet: Supernet,
    space: ShuffleChoiceSpace,
    data: Dataset,
    *,
    config: SearchConfig = SearchConfig(),
    storage: optuna.storages.BaseStorage | str | None = None,
    study_name: str | None = None,
    limits: Limits | None = None,
    pool: Sequence[Sequence[int]] = (),
    recipe: Recipe | None = None,
    out: str | Path | None = None,
    progress: bool = True,
) -> SearchResult:
    """Score ``config.trials`` feasible subnets of ``supernet`` on ``data`` (resuming: only the
    missing ones), starting from the ``pool`` paths, then train the ``final_top`` best from
    scratch for ``final_epochs`` with ``recipe`` (the supernet's, by default SPOS's).
    ``storage``, ``study_name``, ``limits`` and ``out``, when given, stand in for the
    config's."""
    given = {"study_name": study_name, "out": None if out is None else str(out)}
    if isinstance(storage, str):
        given["storage"] = storage
    config = dataclasses.replace(config, **{k: v for k, v in given.items() if v is not None})
    ctx = RunContext.open(config, data=data, storage=None if isinstance(storage, str) else storage)
    limits = ctx.limits if limits is None else limits
    evaluator = InheritWeights(
        supernet=supernet, data=data, recal_images=config.recal_images, device=config.device
    )
    objective = Objective(
        space=space, evaluator=evaluator, limits=limits, seed=config.seed, stage=SUPERNET
    )
    check_reachable(space, limits, ctx.task, objective.constraint, config.seed)
    common = ctx.stamp(space)
    record = {
        "digest": supernet_digest(supernet),
        "recal_images": config.recal_images,
        "sampler": config.sampler,
    }
    sampler = make_sampler(
        config.sampler, objective, seed=config.seed, population=config.population
    )
    study = ctx.open_study(
        keys.COARSE,
        {**common, SUPERNET_RECORD: record},
        sampler=sampler,
        pruner=optuna.pruners.NopPruner(),
    )
    study.set_user_attr(keys.LIMITS, limits.describe())
    if not study.get_trials(deepcopy=False):
        seeds = [dict(zip(space.names, map(int, p), strict=True)) for p in pool]
        for params in [p for p in seeds if all(v <= 0 for v in objective.constraint(p))]:
            study.enqueue_trial(params, user_attrs={"from_pool": True})
    attempts = 0
    while (missing := config.trials - len(scored(study))) > 0:
        if attempts > 20 * config.trials:
            raise ConfigError(
                f"{config.sampler} proposed {attempts} subnets and only {len(scored(study))} "
                f"were feasible under {limits.describe()}"
            )
        attempts += missing
        study.optimize(
            objective,
            n_trials=missing,
            catch=(CandidateRejected,),
            show_progress_bar=progress,
        )
    best = sorted(scored(study), key=lambda t: -t.value)
    if config.final_top == 0 or config.final_epochs == 0:
        return SearchResult(study, [], None)
    out = Path(config.out)
    final = Objective(
        space=space,
        evaluator=ctx.evaluator(
            config.final_epochs,
            default_recipe=recipe or Recipe(lr=0.1, weight_decay=4e-5, label_smoothing=0.1),
        ),
        limits=limits,
        seed=config.seed,
        stage=keys.FINAL,
        dedupe=False,
        weights_dir=str(out / "weights"),
        checkpoint_dir=str(out / "checkpoints"),
    )
    final_study = ctx.open_study(
        keys.FINAL,
        {**common, keys.FINAL_EPOCHS: config.final_epochs},
        sampler=optuna.samplers.RandomSampler(seed=config.seed),
        pruner=optuna.pruners.NopPruner(),
    )
    finals = final_stage(
        final_study,
        [t.params for t in best],
        SupernetScores(best),
        final,
        top=config.final_top,
        progress=progress,
    )
    return SearchResult(study, finals, write_artifacts(out, space, finals))
