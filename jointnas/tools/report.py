"""Tables of trials for people: the CLI prints them, users can call them in notebooks."""

from __future__ import annotations

import optuna
import pandas as pd

from jointnas.storage import keys

COLUMNS = ("mflops", "params", "acts", "train_seconds")
SHOWN_PARAMS = ("resolution", "optimizer", "lr", "ema", "mixup", "augment")


def best_trials_table(
    study: optuna.Study, top: int = 5, *, stage: str | None = None
) -> pd.DataFrame:
    """The ``top`` completed trials of ``stage`` (None: any; a run keeps one stage per study)
    by value, best first, with their cost and key params; final trials also show the accuracy
    the predictor expected. In a reward run (MnasNet's, ``--target-mflops``) the value is the
    reward: ``val_acc`` shows the accuracy and ``reward`` the value, with the predicted
    reward beside the predicted accuracy."""
    done = [
        t
        for t in study.trials
        if t.state == optuna.trial.TrialState.COMPLETE
        and (stage is None or t.user_attrs.get(keys.STAGE, keys.COARSE) == stage)
    ]
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    done.sort(key=lambda t: t.value, reverse=reverse)
    rows = []
    for t in done[:top]:
        row = {"trial": t.number, "val_acc": round(t.user_attrs.get(keys.ACCURACY, t.value), 4)}
        if keys.ACCURACY in t.user_attrs:
            row["reward"] = round(t.value, 4)
        for key in (keys.PREDICTED_ACC, keys.PREDICTED_REWARD):
            if key in t.user_attrs:
                row[key] = round(t.user_attrs[key], 4)
        row.update({k: t.user_attrs.get(k) for k in COLUMNS})
        row.update({k: t.params.get(k) for k in SHOWN_PARAMS if k in t.params})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["mflops"] = frame["mflops"].round(3)
        if "lr" in frame:
            frame["lr"] = frame["lr"].map(lambda v: f"{v:.3g}")
    return frame


def state_counts(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts
