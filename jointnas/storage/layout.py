"""One stage, one study: the studies of a run, how they are linked, and which space they hold.

A run named NAME keeps its coarse (early-stopped) trainings in study ``NAME``, the fine
search's predicted candidates in ``NAME.fine``, the full-budget final trainings in
``NAME.final`` and fidelity calibration in ``NAME.calibration``. So ``optuna.load_study(NAME)``'s
``best_trial`` is a real training, optuna-dashboard's history and importance plots show one
fidelity each, and a sampler refitting on a study's COMPLETE trials never fits predictions.
Every stage study carries the space record, dataset, task and seed, plus its run's name and its
stage (``keys.RUN_NAME``, ``keys.STAGE_OF_STUDY``); the coarse study links to the others
(``keys.STAGE_LINKS``).

Studies written by jointnas 0.1 (layout 1) mixed the three stages in one study; they are
refused with one line instead of answering with a prediction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna

from jointnas.errors import ConfigError
from jointnas.spaces.base import Space
from jointnas.spaces.registry import space_from_legacy, space_from_record
from jointnas.storage import keys
from jointnas.storage.backends import check_study_attrs


def stage_study_name(run: str, stage: str) -> str:
    """The study that holds ``stage`` of run ``run``."""
    return run if stage == keys.COARSE else f"{run}.{stage}"


def check_layout(study: optuna.Study) -> None:
    """Refuse a study written by the layout-1 jointnas (fine and final trials in the coarse
    study): its best trial may be a prediction, and resuming would mix the layouts."""
    attrs = study.user_attrs
    if keys.SPACE not in attrs or attrs.get(keys.LAYOUT) == keys.LAYOUT_VERSION:
        return
    mixed = any(
        t.user_attrs.get(keys.STAGE) in (keys.FINE, keys.FINAL)
        for t in study.get_trials(deepcopy=False)
    )
    if mixed or attrs.get(keys.LAYOUT) not in (None, keys.LAYOUT_VERSION):
        raise ConfigError(
            f"study {study.study_name!r} was written by an older jointnas that kept coarse, "
            "fine and final trials in one study (its best trial may be a prediction); start "
            "a new run with another --study name (optuna still reads the old study as it is)"
        )


def open_stage_study(
    storage: optuna.storages.BaseStorage,
    run: str,
    stage: str,
    stamp: Mapping[str, Any],
    *,
    name: str | None = None,
    **create: Any,
) -> optuna.Study:
    """Create or load the study of ``stage`` of run ``run`` (named ``name``, default
    ``stage_study_name``), stamped with ``stamp`` (space, dataset, seed, ...: refused when it
    holds other settings) and linked from its run's coarse study when that exists. The one
    way jointnas opens a study it writes to, for every driver."""
    study = optuna.create_study(
        storage=storage,
        study_name=name or stage_study_name(run, stage),
        direction="maximize",
        load_if_exists=True,
        **create,
    )
    check_layout(study)
    check_study_attrs(
        study,
        {
            **stamp,
            keys.LAYOUT: keys.LAYOUT_VERSION,
            keys.RUN_NAME: run,
            keys.STAGE_OF_STUDY: stage,
        },
    )
    if study.study_name != run:
        try:
            coarse = optuna.load_study(study_name=run, storage=storage)
        except KeyError:  # e.g. an EDF comparison: no coarse search of that name
            return study
        links = dict(coarse.user_attrs.get(keys.STAGE_LINKS, {}))
        if links.get(stage) != study.study_name:
            coarse.set_user_attr(keys.STAGE_LINKS, {**links, stage: study.study_name})
    return study


def study_space(study: optuna.Study) -> Space:
    """The space a jointnas study (of any stage) was made with, checked against its stored
    fingerprint; a ConfigError when it is not a jointnas study or the space is gone."""
    attrs = study.user_attrs
    try:
        if keys.SPACE_RECORD in attrs:
            return space_from_record(attrs[keys.SPACE_RECORD])
        name = attrs.get(keys.SPACE)
        if name is None:
            raise ConfigError(
                f"study {study.study_name!r} was not made by jointnas (no space attr)"
            )
        space = space_from_legacy(
            name, attrs.get(keys.LEGACY_SPACE_FIXED), fingerprint=attrs.get(keys.SPACE_FINGERPRINT)
        )
    except ValueError as exc:
        raise ConfigError(f"study {study.study_name!r}: {exc}") from None
    stored = attrs.get(keys.SPACE_FINGERPRINT)
    if stored is not None and stored != space.fingerprint():
        raise ConfigError(
            f"study {study.study_name!r} used an older definition of space {name!r} "
            f"(fingerprint {stored}, now {space.fingerprint()})"
        )
    return space


def linked_study(study: optuna.Study, stage: str) -> optuna.Study | None:
    """The study of ``stage`` of the run whose coarse study is ``study`` (None before that
    stage has started)."""
    name = study.user_attrs.get(keys.STAGE_LINKS, {}).get(stage)
    if name is None:
        return None
    return optuna.load_study(study_name=name, storage=study._storage)
