"""The stages of a JointNAS run after the coarse search: predictor, fine search, final training.

Each stage leaves its result in the Optuna storage (trials and study user attrs) and files in
the output directory, and first looks there for a result of an earlier, interrupted run, so a
rerun of the same command resumes at the first unfinished stage.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState, create_trial

from jointnas import files
from jointnas.constraints import Limits, cost_feasibility
from jointnas.predictors import KINDS, Predictor, PredictorError, Task, load_predictor
from jointnas.predictors.card import write_card
from jointnas.predictors.table import study_table
from jointnas.runs.objective import Objective
from jointnas.runs.reward import Reward, RewardScorer
from jointnas.runs.search import BestPerArch, fine_search
from jointnas.samplers.support import predict_rows
from jointnas.spaces.base import Space
from jointnas.storage import keys
from jointnas.storage.budget import counts_toward_budget
from jointnas.storage.keys import params_key
from jointnas.training.data import Dataset
from jointnas.training.trainer import TrainingDiverged

PREDICTOR_ATTR = keys.PREDICTOR
FINE_ATTR = keys.FINE_RESULT


def predictor_stage(
    study: optuna.Study, space: Space, data: Dataset, *, kind: str, seed: int, out: Path
) -> Predictor | None:
    """Fit (or reload) the accuracy predictor on the coarse trials; None if there are too few."""
    stored = study.user_attrs.get(PREDICTOR_ATTR)
    if stored is not None:
        try:
            return load_predictor(stored["path"], space=space)
        except PredictorError:
            pass  # moved or damaged: fit again from the storage, which has everything
    params, y, _ = study_table(study, space)
    cls = KINDS[kind]
    if len(y) < cls.min_points:
        return None
    task = Task(num_classes=data.num_classes, in_channels=data.in_channels)
    predictor = cls(space=space, seed=seed, task=task)
    predictor.fit(params, y, source={"study": study.study_name, "trials": len(y)})
    path = predictor.save(out / "predictor")
    write_card(path, command=f"jointnas run (study {study.study_name!r}, coarse stage)")
    study.set_user_attr(PREDICTOR_ATTR, {"path": str(path), "kind": kind, "trials": len(y)})
    return predictor


def _written_fine(study: optuna.Study) -> set[str]:
    return {
        params_key(t.params)
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    }


def fine_stage(
    study: optuna.Study,
    fine: optuna.Study,
    predictor: Predictor,
    limits: Limits,
    *,
    generations: int,
    population: int,
    children: int,
    record: int,
    seed: int,
    reward: Reward | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Adaptive genetic search scored by the predictor, from the best coarse candidates of
    ``study``; the top ``record`` of each generation are written to the ``fine`` study as
    predicted trials. Returns the best predicted candidate of each architecture seen, best
    first.

    With ``reward`` (the run's values are MnasNet rewards), candidates are ranked by predicted
    reward: the accuracy predictor's value times the exact cost factor of each candidate's
    MFLOPs (``RewardScorer``); fine trials then hold the predicted reward as value and the
    predicted accuracy as ``predicted_acc``."""
    stored = fine.user_attrs.get(FINE_ATTR)
    if stored is not None:
        return stored["top"]
    space, task = predictor.space, predictor.task
    params, y, _ = study_table(study, space, target="value")  # the study's own ranking
    init = space.encode([params[i] for i in np.argsort(-y)[:population]]) if params else None
    scorer = predictor if reward is None else RewardScorer(predictor, reward)
    feasible = cost_feasibility(
        space, limits, num_classes=task.num_classes, in_channels=task.in_channels
    )
    written = _written_fine(fine)  # a resumed run regenerates the same rows: skip them
    dists = dict(space.distributions)
    bar = _bar(generations, "fine search", progress)
    archs = BestPerArch(space)  # final training wants different networks, not recipe variants

    def on_generation(g: int, X: np.ndarray, scores: np.ndarray, stats: dict) -> None:
        top_X, top_s = X[:record], scores[:record]
        c = space.cost_batch(top_X, num_classes=task.num_classes, in_channels=task.in_channels)
        limit_values = limits.values(c)
        accuracy = predict_rows(predictor, top_X) if reward is not None else None
        trials = []
        for i, p in enumerate(space.decode_matrix(top_X)):
            if params_key(p) in written:
                continue
            written.add(params_key(p))
            cost_i = {"mflops": float(c.flops[i]) / 1e6, "params": int(c.params[i])}
            cost_i["acts"] = int(c.acts[i])
            values = [float(v[i]) for v in limit_values]
            extra = {} if accuracy is None else {keys.PREDICTED_ACC: float(accuracy[i])}
            trials.append(
                create_trial(
                    params=p,
                    distributions=dists,
                    value=float(top_s[i]),
                    user_attrs={
                        keys.STAGE: keys.FINE,
                        keys.PREDICTED: True,
                        keys.GENERATION: g,
                        **cost_i,
                        **extra,
                    },
                    system_attrs={"constraints": values}
                    | {f"constraints:{k}": v for k, v in zip(limits.names(), values, strict=True)},
                )
            )
        fine.add_trials(trials)
        archs(g, X, scores, stats)
        if bar is not None:
            bar.set_postfix(best=f"{stats['best']:.4f}", sigma=f"{stats['sigma']:.3f}")
            bar.update(1)

    result = fine_search(
        space,
        scorer,
        feasible=feasible,
        init=init,
        population=population,
        children=children,
        generations=generations,
        seed=seed,
        on_generation=on_generation,
    )
    if bar is not None:
        bar.close()
    archs(generations, result.X, result.predicted, {})
    top_X, top_pred = archs.top(population)
    top = space.decode_matrix(top_X)
    fine.set_user_attr(
        FINE_ATTR,
        {
            "top": top,
            "predicted": top_pred.tolist(),
            "history": result.history,
            "scored": result.scored,
            "seconds": round(result.seconds, 3),
        },
    )
    return top


def final_stage(
    runner: optuna.Study,
    candidates: Sequence[Mapping[str, Any]],
    predictor: Predictor | None,
    objective: Objective,
    *,
    top: int,
    progress: bool = True,
) -> list[optuna.trial.FrozenTrial]:
    """Train the ``top`` best distinct candidates for the full budget as trials of the final
    study ``runner``, recording the predicted accuracy beside the true one (and, when the
    objective has a reward, the predicted reward beside the true one). Completed ones are not
    retrained."""
    chosen, seen = [], set()
    for p in candidates:
        if params_key(p) not in seen:
            seen.add(params_key(p))
            chosen.append(dict(p))
        if len(chosen) == top:
            break
    predicted = predictor.predict(chosen) if predictor is not None and chosen else None
    # A final training killed in an earlier run is failed and re-enqueued (heartbeat retry) now,
    # before the loop below looks for WAITING trials, so the candidate is not enqueued twice.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(runner)

    def finals() -> dict[str, optuna.trial.FrozenTrial]:
        """Final trials that count as done (as in ``counts_toward_budget``)."""
        return {
            params_key(t.params): t
            for t in runner.get_trials(deepcopy=False)
            if counts_toward_budget(t)
        }

    bar = _bar(len(chosen), "final training", progress)
    for i, p in enumerate(chosen):
        if params_key(p) not in finals():
            attrs = {keys.PREDICTED_ACC: float(predicted[i])} if predicted is not None else {}
            if predicted is not None and objective.reward is not None:
                mflops = objective.measure(objective.space.decode(p).arch).mflops
                attrs[keys.PREDICTED_REWARD] = objective.reward(float(predicted[i]), mflops)
            waiting = runner.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            if not any(params_key(t.params) == params_key(p) for t in waiting):
                runner.enqueue_trial(p, user_attrs=attrs)
            runner.optimize(objective, n_trials=1, catch=(TrainingDiverged,))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    done = finals()
    return [done[params_key(p)] for p in chosen if params_key(p) in done]


def write_artifacts(
    out: Path, space: Space, finals: Sequence[optuna.trial.FrozenTrial]
) -> dict[str, Any] | None:
    """``best.json`` (arch, recipe, accuracies, cost) and ``best.safetensors`` for the best
    completed final trial; ``final.csv`` for all of them."""
    import pandas as pd

    from jointnas.storage.candidates import candidate_summary

    done = [t for t in finals if t.state == TrialState.COMPLETE]
    if not done:
        return None
    rewarded = any(keys.ACCURACY in t.user_attrs for t in done)

    def scores(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
        """Accuracy (and, in a reward run, the reward: the trial's value), true and predicted."""
        row = {"val_acc": t.user_attrs.get(keys.ACCURACY, t.value)}
        if rewarded:
            row["reward"] = t.value
        row["predicted_acc"] = t.user_attrs.get(keys.PREDICTED_ACC)
        if rewarded:
            row["predicted_reward"] = t.user_attrs.get(keys.PREDICTED_REWARD)
        return row

    rows = [
        {
            "trial": t.number,
            **scores(t),
            **{k: t.user_attrs.get(k) for k in ("mflops", "params", "acts")},
            **t.params,
        }
        for t in done
    ]
    out.mkdir(parents=True, exist_ok=True)
    files.write_text(out / "final.csv", pd.DataFrame(rows).to_csv(index=False))
    best = max(done, key=lambda t: t.value)  # the value the run optimised: reward or accuracy
    summary = {**candidate_summary(space, best), **scores(best)}
    files.write_text(out / "best.json", json.dumps(summary, indent=2, default=str))
    weights = best.user_attrs.get(keys.WEIGHTS)
    if weights and Path(weights).is_file():
        files.copy(weights, out / "best.safetensors")
    return summary


def _bar(total: int, desc: str, progress: bool):
    if not progress or total <= 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc)
