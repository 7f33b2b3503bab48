"""Export one trial of a study: its architecture and recipe as JSON, its weights as safetensors.

Final-stage trials keep their weights (the run saved them); any other trial (a coarse one, an
AutoTrain one, a predicted one that was never trained) is trained here first, for ``epochs``,
with the trial's own seed, so the exported network is a real one of that candidate.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import optuna

from jointnas import files
from jointnas.errors import ConfigError
from jointnas.evaluators import TrainFromScratch
from jointnas.runs.objective import trial_seed
from jointnas.spaces.base import Space
from jointnas.spaces.encoding import check_value
from jointnas.storage import keys
from jointnas.storage.backends import load_study
from jointnas.storage.layout import check_layout, study_space
from jointnas.training.data import Dataset, load_dataset

WEIGHTS = "weights.safetensors"


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


def export_trial(
    storage: str,
    study_name: str,
    number: int,
    out: str | Path,
    *,
    epochs: int = 6,
    data: Dataset | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Write ``candidate.json`` and ``weights.safetensors`` for trial ``number`` into ``out``."""
    study = load_study(storage, study_name)
    check_layout(study)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise ConfigError(f"study {study_name!r} has no trial {number} (it has {len(trials)})")
    trial = trials[number]
    if not trial.state.is_finished() or not trial.params:
        raise ConfigError(f"trial {number} is {trial.state.name}; export a finished trial")
    space = study_space(study)
    cand = space.decode(trial.params)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights = trial.user_attrs.get(keys.WEIGHTS)
    seed = study.user_attrs.get(keys.SEED, 0)
    if weights and Path(weights).is_file():
        files.copy(weights, out / WEIGHTS)
        source = {"weights": "saved by the run", "from": weights}
    else:
        if data is None:
            data = load_dataset(study.user_attrs.get(keys.DATASET, "mnist5k"), seed=seed)
        evaluator = TrainFromScratch(data=data, epochs=epochs, device=device)
        result = evaluator.evaluate(space, cand, seed=trial_seed(seed, number))
        files.write_weights(result.model, out / WEIGHTS)
        source = {"weights": f"trained here for {epochs} epochs", "val_acc": result.value}
    summary = {"study": study_name, **candidate_summary(space, trial), **source}
    files.write_text(out / "candidate.json", json.dumps(summary, indent=2, default=str))
    return summary
