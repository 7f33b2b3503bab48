"""Running trials in CoarseSampler's proposals: the GP's joint posterior (pinned to Optuna's),
q-EI over the running proposals (checked against brute-force sampling of the joint), and the
sampler using it by default and falling back to fantasies where the model has no joint."""

from __future__ import annotations

import numpy as np
import optuna
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from jointnas.samplers.acquisition import expected_improvement
from jointnas.samplers.coarse import CoarseSampler
from jointnas.samplers.coarse_model import BatchEI
from jointnas.samplers.gp import MixedGP
from jointnas.spaces.encoding import Encoder

optuna.logging.set_verbosity(optuna.logging.ERROR)

SPACE = {
    "a": FloatDistribution(0.0, 1.0),
    "n": IntDistribution(1, 9),
    "op": CategoricalDistribution(["conv", "pool", "skip"]),
}


def _rows(enc: Encoder, n: int, seed: int) -> np.ndarray:
    return enc.encode(enc.from_unit(np.random.default_rng(seed).random((n, len(enc.names)))))


def _fitted(n: int = 25) -> tuple[Encoder, MixedGP, np.ndarray]:
    enc = Encoder(SPACE)
    X = _rows(enc, n, 0)
    cols = enc.columns(X)
    y = np.sin(6 * cols["a"]) + 0.1 * cols["n"] + np.array([0.5, 0.0, -0.5])[cols["op"]]
    y = (y - y.mean()) / y.std()
    return enc, MixedGP(encoder=enc).fit(X, y), y


def test_joint_posterior_is_optunas() -> None:
    """The covariance between candidates and running rows equals Optuna's joint posterior."""
    enc, gp, _ = _fitted()
    Q = _rows(enc, 6, 1)
    _, var, cov = gp.posterior(Q, Q)
    _, joint = gp.gpr.posterior(torch.from_numpy(gp.features(Q)), joint=True)
    np.testing.assert_allclose(cov, joint.numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(np.diag(cov), var, rtol=1e-6, atol=1e-12)


def test_batch_ei_is_the_expected_improvement_of_the_batch() -> None:
    """q-EI of a candidate x given running rows P equals E[max(0, max f(P + x) - best)] under
    the joint posterior, estimated here by brute-force sampling of the whole joint."""
    enc, gp, y = _fitted()
    P, C = _rows(enc, 3, 2), _rows(enc, 4, 3)
    best = float(y.max())
    batch = BatchEI(gp, P, best, np.random.default_rng(0), samples=20_000)
    ours = batch(C)
    rng = np.random.default_rng(1)
    for i, x in enumerate(C):
        Q = np.concatenate([P, x[None]])
        mean, _, cov = gp.posterior(Q, Q)
        draws = rng.multivariate_normal(mean, cov + 1e-12 * np.eye(len(Q)), 400_000)
        truth = np.maximum(draws.max(axis=1) - best, 0.0).mean()
        np.testing.assert_allclose(ours[i], truth, rtol=0.03, atol=2e-3)


def test_a_candidate_at_a_running_proposal_adds_nothing() -> None:
    """Its value is fixed by the running trial's: the batch's improvement stays what the
    running trials give, while plain EI would rate it as if nobody were evaluating it."""
    enc, gp, y = _fitted()
    P = _rows(enc, 2, 4)
    best = float(y.max())
    batch = BatchEI(gp, P, best, np.random.default_rng(0))
    at_running = batch(P[:1])[0]
    assert abs(at_running - batch._base) < 1e-6
    mean, std = gp.mean_std(P[:1])
    alone = expected_improvement(mean - best, std)[0]
    if alone > 1e-3:
        assert at_running - batch._base < 0.01 * alone


def _simulated(sampler: CoarseSampler, workers: int, trials: int) -> list[dict]:
    """``workers`` trials always running, the oldest completed first."""

    def f(p: dict) -> float:
        gain = {"conv": 0.0, "pool": 0.3, "skip": 0.6}[p["op"]]
        return (p["a"] - 0.3) ** 2 + 0.05 * p["n"] + gain

    study = optuna.create_study(sampler=sampler)
    running: list = []
    while len(study.trials) < trials or running:
        while len(running) < workers and len(study.trials) < trials:
            t = study.ask()
            p = {
                "a": t.suggest_float("a", 0.0, 1.0),
                "n": t.suggest_int("n", 1, 9),
                "op": t.suggest_categorical("op", ["conv", "pool", "skip"]),
            }
            running.append((t, f(p)))
        t, v = running.pop(0)
        study.tell(t, v)
    return [t.params for t in study.trials]


def test_default_sampler_uses_q_ei_with_running_trials_and_is_seeded() -> None:
    sampler = CoarseSampler(search_space=SPACE, seed=3, exploration=0.0)
    first = _simulated(sampler, workers=4, trials=20)
    space = sampler._fixed
    assert sampler._settings.fantasize == "qei"
    assert space.model._train.shape[0] < 20  # conditioned on completed trials only
    assert len({tuple(sorted(p.items())) for p in first}) == 20  # no two workers share one
    again = _simulated(CoarseSampler(search_space=SPACE, seed=3, exploration=0.0), 4, 20)
    assert first == again
