"""OptunaHub's AutoSampler as a baseline: its published selection rule, written here.

OptunaHub loads ``samplers/auto_sampler`` from GitHub at run time, which this machine cannot
reach, so the benchmarks apply its documented rule for one objective with Optuna's samplers:
multivariate TPE when the space has a categorical parameter or is conditional (the completed
trials do not all share one set of parameters); otherwise GPSampler while fewer than 250 trials
are complete, then CMA-ES, or TPE where the trials carry constraints (CMA-ES ignores them). The
choice is made per trial from the study, so a resumed study chooses as the first process did.
"""

from __future__ import annotations

from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, CmaEsSampler, GPSampler, TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

GP_TRIALS = 250


class AutoSampler(BaseSampler):
    def __init__(self, *, seed: int | None = None) -> None:
        self._tpe = TPESampler(seed=seed, multivariate=True)
        self._gp = GPSampler(seed=seed)
        self._cmaes = CmaEsSampler(seed=seed)
        self._chosen: dict[int, BaseSampler] = {}

    def choose(self, study: Study) -> BaseSampler:
        done = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,), use_cache=True)
        names = {frozenset(t.distributions) for t in done}
        categorical = any(
            isinstance(d, CategoricalDistribution) for t in done for d in t.distributions.values()
        )
        if categorical or len(names) > 1:
            return self._tpe
        if len(done) < GP_TRIALS:
            return self._gp
        constrained = any("constraints" in t.system_attrs for t in done)
        return self._tpe if constrained else self._cmaes

    def _of(self, study: Study, trial: FrozenTrial) -> BaseSampler:
        if trial.number not in self._chosen:
            self._chosen[trial.number] = self.choose(study)
        return self._chosen[trial.number]

    def reseed_rng(self) -> None:
        for sampler in (self._tpe, self._gp, self._cmaes):
            sampler.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._of(study, trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._of(study, trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        sampler = self._of(study, trial)
        return sampler.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._of(study, trial).before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: list[float] | None,
    ) -> None:
        self._of(study, trial).after_trial(study, trial, state, values)
        self._chosen.pop(trial.number, None)
