"""Export one trial of a study: its architecture and recipe as JSON, its weights as safetensors.

Final-stage trials keep their weights (the run saved them); any other trial (a coarse one, an
AutoTrain one, a predicted one that was never trained) is trained here first, for ``epochs``,
with the trial's own seed, so the exported network is a real one of that candidate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jointnas import files
from jointnas.errors import ConfigError
from jointnas.evaluators import TrainFromScratch
from jointnas.storage import keys
from jointnas.storage.backends import load_study
from jointnas.storage.candidates import candidate_summary
from jointnas.storage.keys import trial_seed
from jointnas.storage.layout import check_layout, study_space
from jointnas.training.data import Dataset, load_dataset

WEIGHTS = "weights.safetensors"


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
