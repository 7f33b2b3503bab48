"""Every name jointnas writes into an Optuna storage, in one place.

Studies, trials and the dashboard are read by people and by other processes (workers, export,
report, a later rerun), so the attribute keys and stage names are an interface: they are named
here once and imported everywhere else; so are how a candidate's params and a trial's seed are
keyed (``params_key``, ``trial_seed``), which stored trials are matched and reproduced by.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

# -- stages: one study each, named after the run (the coarse study carries the run's name) ----
COARSE = "coarse"  #: early-stopped trainings, in study NAME
FINE = "fine"  #: predicted (not trained) candidates of the fine search, in NAME.fine
FINAL = "final"  #: full-budget trainings of the best predicted candidates, in NAME.final
CALIBRATION = "calibration"  #: full-budget trainings that calibrate the fidelity
STAGE_STUDIES = (FINE, FINAL, CALIBRATION)
SCALE = "scale"  #: compound scaling's grid search, in study NAME (``designs.scaling``)
SCALE_COMPARE = "scale.compare"  #: the scaled and one-dimension models, in NAME.compare
#: trainings of one design space for its error EDF, in study NAME.edf.<space> (``designs.edf``)
EDF = "edf"
SUPERNET = "supernet"  #: supernet-scored (not trained) trials of a supernet search, in NAME

#: version of the study layout; studies of version 1 held all stages in one study
LAYOUT_VERSION = 2

# -- study user attrs ---------------------------------------------------------------------------
LAYOUT = "jointnas:layout"  #: LAYOUT_VERSION of the studies of a run
RUN_NAME = "jointnas:run_name"  #: the run (coarse study) a stage study belongs to
STAGE_OF_STUDY = "jointnas:stage"  #: which stage a study holds
STAGE_LINKS = "jointnas:stages"  #: on the coarse study: stage -> study name
SPACE = "jointnas:space"  #: the registered name of the space
SPACE_RECORD = "jointnas:space_record"  #: name, options, module, fingerprint (rebuilds it)
SPACE_FINGERPRINT = "jointnas:space_fingerprint"
LEGACY_SPACE_FIXED = "jointnas:space_fixed"  #: layout 1: the pinned params of AutoTrain
DATASET = "jointnas:dataset"
#: how the data was held and augmented (``runs.context.DATA_FIELDS``); studies from before
#: augmentation lack it and are stamped with the settings they are resumed with
DATA_SETTINGS = "jointnas:data_settings"
TASK = "jointnas:task"  #: {"num_classes", "in_channels"}
SEED = "jointnas:seed"
EPOCHS = "jointnas:epochs"
SCHEDULE_EPOCHS = "jointnas:schedule_epochs"
FINAL_EPOCHS = "jointnas:final_epochs"  #: on the final study: its full training budget
LIMITS = "jointnas:limits"
#: MnasNet reward settings (``jointnas.runs.reward.Reward.record``), or None: values are accuracies
REWARD = "jointnas:reward"
RUN = "jointnas:run"  #: the settings a `jointnas worker` joins with
PREDICTOR = "jointnas:predictor"  #: path, kind, trials of the fitted predictor
FINE_RESULT = "jointnas:fine"  #: top candidates, history and speed of the fine search
CALIBRATION_RESULT = "jointnas:calibration"
EDF_SPACE = "jointnas:edf_space"  #: on an EDF study: the record of the space sampled
EDF_BAND = "jointnas:edf_band"  #: on an EDF study: [low, high] MFLOPs every model lies in
EDF_RECIPE = "jointnas:edf_recipe"  #: on an EDF study: the one recipe (+ batch size) of all
SUPERNET_RECORD = "jointnas:supernet"  #: on a supernet search: which supernet scored it
#: on a scaling study: the base, data, seeds and budget it was made with (one dict)
SCALE_SETTINGS = "jointnas:scale"

# -- trial system attrs -------------------------------------------------------------------------
HEARTBEAT = "jointnas:heartbeat"  #: last beat of a running trial on a journal file

# -- trial user attrs ---------------------------------------------------------------------------
STAGE = "stage"
WORKER = "worker"  #: host:pid of the process that ran the trial
WORKER_DIED = "worker_died"  #: on a trial failed because its worker died: how it died
NOT_RETRIED = "not_retried"  #: on a WAITING retry dropped because the budget was reached
PREDICTED = "predicted"  #: True on fine-search trials: the value is a prediction
PREDICTED_ACC = "predicted_acc"  #: on final trials: what the predictor expected
PREDICTED_REWARD = "predicted_reward"  #: reward runs, final trials: the expected reward
ACCURACY = "accuracy"  #: reward runs: the evaluator's accuracy (the trial's value is the reward)
REWARD_VALUE = "reward"  #: reward runs: the reward, equal to the trial's value
GENERATION = "generation"
FAIL_REASON = "fail_reason"  #: a deliberate failure (diverged, infeasible): uses budget
SKIPPED = "skipped"  #: a duplicate candidate that was not trained
WEIGHTS = "weights"
RESUMED_EPOCHS = "resumed_epochs"  #: epochs a final training restored from its checkpoint
CURVE = "val_acc_curve"
EDF_INDEX = "edf_index"  #: EDF trials: which of the seeded draws of the space this is
ERROR = "error"  #: EDF trials: 1 - validation accuracy
COST_KEYS = ("mflops", "params", "acts")


def params_key(params: Mapping[str, Any]) -> str:
    """A candidate's identity as text: equal params, equal key (order and types aside)."""
    return json.dumps(dict(params), sort_keys=True, default=str)


def trial_seed(seed: int, number: int) -> int:
    """A per-trial seed derived from the study seed: stable across resumes and workers."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])
