"""Accuracy predictors: the neural predictor of JointNAS (Dai et al., 2020) and XGBoost, one
API, safe artifacts."""

from jointnas.predictors.base import (
    KINDS,
    Predictor,
    PredictorError,
    Task,
    load_predictor,
    read_metadata,
)
from jointnas.predictors.metrics import precision_at_k, ranking_metrics
from jointnas.predictors.neural import NeuralPredictor
from jointnas.predictors.table import (
    cross_validate,
    eval_on_study,
    fit_on_study,
    read_table,
    study_space,
    study_table,
)
from jointnas.predictors.xgb import XGBoostPredictor

__all__ = [
    "KINDS",
    "NeuralPredictor",
    "Predictor",
    "PredictorError",
    "Task",
    "XGBoostPredictor",
    "cross_validate",
    "eval_on_study",
    "fit_on_study",
    "load_predictor",
    "precision_at_k",
    "ranking_metrics",
    "read_metadata",
    "read_table",
    "study_space",
    "study_table",
]
