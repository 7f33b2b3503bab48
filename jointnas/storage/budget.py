"""What uses up a stage's budget of trainings, counted in the storage.

Several processes add trials to one study, so the budget is always counted from the storage,
never per process: completed, pruned and deliberately failed trials (diverged, infeasible,
given up: they carry a ``fail_reason``) use it up; a trial cut off by Ctrl-C, a crash or a dead
worker is retried and does not.
"""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from jointnas.storage import keys


def counts_toward_budget(trial: optuna.trial.FrozenTrial) -> bool:
    """True for a trial that used up a training of the budget (see the module docstring)."""
    if trial.state == TrialState.FAIL:
        return keys.FAIL_REASON in trial.user_attrs
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED)


def coarse_done(study: optuna.Study) -> int:
    """Coarse trials of ``study`` that use up the budget."""
    return sum(
        counts_toward_budget(t) and t.user_attrs.get(keys.STAGE, keys.COARSE) == keys.COARSE
        for t in study.get_trials(deepcopy=False)
    )
