"""Fidelity calibration: how early can training stop and still rank candidates right?

JointNAS (Dai et al., 2020) trains its coarse-search candidates early-stopped. Here ``k``
uniformly drawn feasible candidates are trained for the full budget (a ``jointnas run`` of its
own that stops after them, in the study ``<study>.calibration``), each epoch's ranking is
compared with the final one (Kendall tau, Spearman), and the earliest epoch whose tau reaches
the threshold is recommended. An early-stopped run then trains that many epochs *of the
full-budget cosine schedule*, so its accuracies are exactly the prefix the calibration
measured. The result is stored as the user attr ``jointnas:calibration`` of the main study,
where ``jointnas run --epochs calibrated`` reads it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from scipy import stats

from jointnas.errors import ConfigError
from jointnas.runs.pipeline import RunConfig, run
from jointnas.runs.reward import MNASNET_EXPONENT
from jointnas.storage import keys
from jointnas.storage.backends import load_study, open_storage
from jointnas.storage.layout import stage_study_name
from jointnas.training.data import Dataset

ATTR = keys.CALIBRATION_RESULT


def calibration_study_name(study_name: str) -> str:
    return stage_study_name(study_name, keys.CALIBRATION)


def rank_agreement(curves: np.ndarray) -> tuple[list[float], list[float]]:
    """Kendall tau and Spearman rho of each epoch's accuracies (columns) against the last."""
    curves = np.asarray(curves, dtype=float)
    if curves.ndim != 2 or curves.shape[0] < 3:
        raise ValueError(f"need per-epoch curves of >= 3 candidates, got shape {curves.shape}")
    final = curves[:, -1]
    taus = [float(np.nan_to_num(stats.kendalltau(c, final).statistic)) for c in curves.T]
    rhos = [float(np.nan_to_num(stats.spearmanr(c, final).statistic)) for c in curves.T]
    return taus, rhos


def recommend_epoch(taus: list[float], threshold: float) -> int:
    """Earliest epoch (1-based) whose ranking agrees with the final one at ``threshold``."""
    return next((e for e, tau in enumerate(taus, start=1) if tau >= threshold), len(taus))


def calibrate(
    config: RunConfig,
    *,
    threshold: float = 0.8,
    data: Dataset | None = None,
    progress: bool = True,
    plot: str | Path | None = None,
) -> dict[str, Any]:
    """Train ``config.trials`` candidates for ``config.epochs`` epochs and store the calibration
    (per-epoch tau/rho, recommended epoch) on ``config.study_name``; resumable like ``run``."""
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"--threshold must be in (0, 1], got {threshold}")
    if config.epochs < 2:
        raise ConfigError("calibration needs --epochs >= 2 (the full budget to compare against)")
    cal_config = dataclasses.replace(
        config,
        study_name=calibration_study_name(config.study_name),
        stop_after="coarse",  # calibration trains candidates; it searches nothing
        coarse_sampler="random",  # unbiased draws: a predictor's picks narrow the spread
        workers=1,
        target_mflops=None,  # the fidelity of the accuracy ranking; a reward run shares it
        reward_alpha=MNASNET_EXPONENT,
        reward_beta=MNASNET_EXPONENT,
    )
    cal = run(cal_config, data=data, progress=progress)
    done = [t for t in cal.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    curves = [t.user_attrs["val_acc_curve"] for t in done]
    if len(curves) < 3:
        raise ConfigError(f"only {len(curves)} calibration trainings completed; need >= 3")
    taus, rhos = rank_agreement(np.array(curves))
    result = {
        "epochs": config.epochs,
        "candidates": len(curves),
        "threshold": threshold,
        "kendall_tau": taus,
        "spearman": rhos,
        "recommended_epochs": recommend_epoch(taus, threshold),
        "study": cal_config.study_name,
    }
    study = optuna.create_study(
        storage=open_storage(config.storage),
        study_name=config.study_name,
        direction="maximize",
        load_if_exists=True,
    )
    study.set_user_attr(ATTR, result)
    links = dict(study.user_attrs.get(keys.STAGE_LINKS, {}))
    study.set_user_attr(keys.STAGE_LINKS, {**links, keys.CALIBRATION: cal_config.study_name})
    if plot is not None:
        plot_calibration(result, plot)
    return result


def stored_calibration(storage: str, study_name: str) -> dict[str, Any]:
    """The calibration stored on a study, or a ConfigError saying how to make one."""
    try:
        attrs = load_study(storage, study_name).user_attrs
    except ConfigError:
        attrs = {}
    if ATTR not in attrs:
        raise ConfigError(
            f"study {study_name!r} has no calibration; run `jointnas calibrate --study "
            f"{study_name}` first"
        )
    return attrs[ATTR]


def plot_calibration(result: dict[str, Any], path: str | Path) -> Path:
    """Tau and rho vs epoch, the threshold and the recommended epoch, as a PNG."""
    from jointnas.plotting import axes, save

    epochs = np.arange(1, result["epochs"] + 1)
    fig, ax = axes()
    ax.plot(epochs, result["kendall_tau"], "o-", label="Kendall tau vs final")
    ax.plot(epochs, result["spearman"], "s--", label="Spearman vs final")
    ax.axhline(result["threshold"], color="grey", lw=0.8, label=f"threshold {result['threshold']}")
    ax.axvline(result["recommended_epochs"], color="tab:red", lw=0.8, label="recommended")
    ax.set(xlabel="epoch", ylabel="rank agreement", ylim=(-0.1, 1.05), xticks=epochs)
    ax.set_title(f"Fidelity calibration: {result['candidates']} candidates")
    ax.legend(loc="lower right")
    return save(fig, path)
