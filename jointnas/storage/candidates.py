"""A candidate as a JSON file: what ``best.json`` and ``jointnas export`` write, and what
``--fix-arch``, ``scale --base`` and ``describe --arch`` read back.

Its own module below runs and tools, because the run's final stage writes these files and the
tools and design studies read them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import optuna

from jointnas.errors import ConfigError
from jointnas.spaces.base import Space
from jointnas.spaces.encoding import check_value
from jointnas.storage import keys


def read_arch(path: str | Path, space: Space, *, option: str = "--fix-arch") -> dict[str, Any]:
    """The architecture params of ``space`` in a JSON file: a params dict, or a ``best.json`` /
    ``candidate.json`` (its "params"); recipe keys are ignored. One-line ConfigError (naming
    ``option``) when the file is missing, not JSON, or lacks / misnames / mis-values an
    architecture parameter."""
    names = space.arch_names
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{option}: no file {str(path)!r}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{option}: {str(path)!r} is not a JSON file: {exc}") from None
    params = data.get("params", data) if isinstance(data, dict) else None
    if not isinstance(params, dict):
        raise ConfigError(f"{option}: {str(path)!r} holds no params dict")
    missing = [k for k in names if k not in params]
    unknown = sorted(set(params) - set(space.distributions))
    if missing:
        raise ConfigError(f"{option}: {str(path)!r} lacks architecture keys {missing}")
    if unknown:
        raise ConfigError(f"{option}: {str(path)!r} has keys that are not parameters: {unknown}")
    try:
        return {k: check_value(k, space.distributions[k], params[k]) for k in names}
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def candidate_summary(space: Space, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """What a user needs to rebuild and retrain a trial's candidate, JSON-able."""
    cand = space.decode(trial.params)
    return {
        "trial": trial.number,
        "stage": trial.user_attrs.get(keys.STAGE, keys.COARSE),
        "value": trial.value,
        "predicted": bool(trial.user_attrs.get(keys.PREDICTED, False)),
        "predicted_acc": trial.user_attrs.get(keys.PREDICTED_ACC),
        **{  # a reward run's value is the reward; these say what it was made of
            k: trial.user_attrs[k]
            for k in (keys.ACCURACY, keys.REWARD_VALUE, keys.PREDICTED_REWARD)
            if k in trial.user_attrs
        },
        "cost": {k: trial.user_attrs.get(k) for k in keys.COST_KEYS},
        "params": trial.params,
        "arch": dataclasses.asdict(cand.arch),
        "recipe": dataclasses.asdict(cand.recipe) if cand.recipe is not None else None,
        "space": {"name": space.key, "options": space.options, "fingerprint": space.fingerprint()},
    }
