"""The AutoSampler baseline of the sampler benchmarks (``benchmarks/_auto_sampler.py``): its
published rule, and the identity the suite benchmark relies on to reuse GPSampler's runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import optuna

optuna.logging.set_verbosity(optuna.logging.ERROR)
PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "_auto_sampler.py"
_spec = importlib.util.spec_from_file_location("_auto_sampler", PATH)
assert _spec is not None and _spec.loader is not None
auto = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(auto)


def numeric(trial: optuna.Trial) -> float:
    return (trial.suggest_float("x", -3, 3) - 1) ** 2 + trial.suggest_int("n", 0, 7)


def mixed(trial: optuna.Trial) -> float:
    return numeric(trial) + (trial.suggest_categorical("c", ["a", "b"]) == "b")


def test_rule_tpe_for_categorical_gp_for_numeric() -> None:
    sampler = auto.AutoSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(mixed, n_trials=3)
    assert sampler.choose(study) is sampler._tpe
    sampler = auto.AutoSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(numeric, n_trials=3)
    assert sampler.choose(study) is sampler._gp


def test_on_a_numeric_space_it_proposes_what_gpsampler_proposes() -> None:
    def params(sampler: optuna.samplers.BaseSampler) -> list[dict]:
        study = optuna.create_study(sampler=sampler)
        study.optimize(numeric, n_trials=14)
        return [t.params for t in study.trials]

    assert params(auto.AutoSampler(seed=3)) == params(optuna.samplers.GPSampler(seed=3))
