"""Training data for a predictor, read from an Optuna study: the state lives in the storage."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import optuna
import pandas as pd

from jointnas.errors import ConfigError
from jointnas.predictors.base import KINDS, Predictor, Task, load_predictor
from jointnas.predictors.metrics import ranking_metrics
from jointnas.spaces.base import Space
from jointnas.storage import keys
from jointnas.storage.backends import load_study
from jointnas.storage.layout import study_space


def study_table(
    study: optuna.Study,
    space: Space,
    *,
    stages: Iterable[str] = ("coarse",),
    target: str = "accuracy",
) -> tuple[list[dict[str, Any]], np.ndarray, list[int]]:
    """(params, accuracy, trial numbers) of the study's completed, really trained trials.

    Only trials of ``stages`` count (a trial without a stage attr counts as ``coarse``): the
    fine search's *predicted* trials and full-budget final trainings are other targets. A trial
    whose params do not belong to ``space`` is a ConfigError naming it.

    ``target="accuracy"``: the evaluator's accuracy, which is the trial's value unless the run
    optimised MnasNet's reward (then the ``accuracy`` user attr; predictors learn accuracy);
    ``target="value"``: the trial's value as the study ranks it.
    """
    if target not in ("accuracy", "value"):
        raise ValueError(f"target must be 'accuracy' or 'value', got {target!r}")
    stages = set(stages)
    params, y, numbers = [], [], []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        stage = t.user_attrs.get(keys.STAGE, keys.COARSE)
        if stage not in stages or t.user_attrs.get(keys.PREDICTED):
            continue
        try:
            params.append(space.validate(t.params))
        except ValueError as exc:
            raise ConfigError(
                f"trial {t.number} of study {study.study_name!r} does not fit space "
                f"{space.name!r}: {exc}"
            ) from None
        y.append(float(t.value if target == "value" else t.user_attrs.get(keys.ACCURACY, t.value)))
        numbers.append(t.number)
    return params, np.asarray(y, dtype=float), numbers


def read_table(path: str | os.PathLike, space: Space) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """The completed rows of a recorded table (``benchmarks/record_table.py``'s CSV) and their
    params, validated against ``space``."""
    frame = pd.read_csv(path, comment="#")
    frame = frame[frame["state"] == "COMPLETE"].reset_index(drop=True)
    missing = [n for n in space.distributions if n not in frame.columns]
    if missing == ["augment"]:  # recorded before the recipe's augment axis
        raise ConfigError(
            f"table {str(path)!r} was recorded before {space.name!r} searched 'augment': read "
            "it with the space built inside jointnas.spaces.recipe_axes.before_augment_axis()"
        )
    if missing:
        raise ConfigError(f"table {str(path)!r} lacks the columns {missing} of {space.name!r}")
    params = [
        space.validate({n: row[n] for n in space.distributions}) for _, row in frame.iterrows()
    ]
    return params, frame


def fit_on_study(
    storage: str,
    study_name: str,
    *,
    kind: str,
    seed: int = 0,
    cv: int = 5,
    **hyperparameters: Any,
) -> Predictor:
    """Fit a ``kind`` predictor on a study's completed coarse trials; with ``cv`` >= 2, also
    store ``cv``-fold out-of-fold ranking metrics in ``predictor.metrics['cv']``."""
    if kind not in KINDS:
        raise ConfigError(f"unknown predictor kind {kind!r}; choose one of {sorted(KINDS)}")
    study = load_study(storage, study_name)
    space = study_space(study)
    params, y, _ = study_table(study, space)
    cls = KINDS[kind]
    if len(y) < cls.min_points:
        raise ConfigError(
            f"study {study_name!r} has {len(y)} completed trials; a predictor needs at least "
            f"{cls.min_points}"
        )
    task = Task(**study.user_attrs.get(keys.TASK, {}))

    def make() -> Predictor:
        return cls(space=space, seed=seed, task=task, **hyperparameters)

    predictor = make()
    source = {"storage": storage, "study": study_name, "trials": len(y)}
    predictor.fit(params, y, source=source)
    if cv >= 2:
        predictor.metrics["cv"] = cross_validate(make, params, y, folds=cv, seed=seed)
    return predictor


def cross_validate(
    make: Callable[[], Predictor],
    params: list[dict[str, Any]],
    y: np.ndarray,
    *,
    folds: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """Ranking metrics of out-of-fold predictions (every point predicted by a model that did
    not see it): an honest estimate from the training data alone."""
    if folds < 2 or folds > len(y):
        raise ValueError(f"folds must be in [2, {len(y)}], got {folds}")
    order = np.random.default_rng(seed).permutation(len(y))
    pred = np.empty(len(y))
    for held in np.array_split(order, folds):
        keep = np.setdiff1d(order, held)
        model = make().fit([params[i] for i in keep], y[keep])
        pred[held] = model.predict([params[i] for i in held])
    return {**ranking_metrics(y, pred), "folds": folds}


def eval_on_study(directory: str, storage: str, study_name: str) -> dict[str, float]:
    """Ranking metrics of a saved predictor on a study's completed coarse trials."""
    study = load_study(storage, study_name)
    predictor = load_predictor(directory, space=study_space(study))
    params, y, _ = study_table(study, predictor.space)
    if len(y) < 2:
        raise ConfigError(f"study {study_name!r} has {len(y)} completed trials; need >= 2")
    return ranking_metrics(y, predictor.predict(params))
