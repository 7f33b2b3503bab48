"""The surrogate behind one CoarseSampler proposal, and what the running trials do to it.

The model is a pure function of the storage (workers and a resumed study fit the same one): it
is fitted on the first ``m`` usable completed trials in completion order, ``m`` following the
refit schedule (``coarse_setup.refit_point``); a model that can be *conditioned* cheaply on new
rows with its fitted hyperparameters (the GP) then sees every completed trial. The in-memory
fit is only a cache, keyed by the trials it saw.

Running trials (other workers' proposals, recorded on their trials) must change the next
proposal, or N workers propose N neighbours of one incumbent. Three ways, chosen by
``fantasize``:

* ``"qei"``: q-batch expected improvement, what Optuna 5's GPSampler does with qLogEI. The GP's
  joint posterior at the running proposals is sampled (seeded); a candidate scores the
  expected improvement of the batch (running proposals + candidate) over the best trial,
  averaged over the samples, each in closed form given the sample. A candidate next to a
  running proposal is nearly determined by it and adds little, so workers spread out by what
  the model knows, not by a guess. Needs the GP's joint posterior: other surrogates (trees,
  ensembles) fall back to ``"mean"``.
* ``"mean"``: running proposals enter the fit at their predicted mean (kriging believer).
* ``"worst"``: at the worst value seen (constant liar); ``"off"``: not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from jointnas.samplers.acquisition import expected_improvement, tie_break
from jointnas.samplers.coarse_setup import Settings, default_surrogate, refit_point
from jointnas.samplers.coarse_trials import SpaceState
from jointnas.samplers.surrogate import transform_target
from jointnas.spaces.encoding import Params

#: joint samples of the running trials' values per proposal (q-EI)
QEI_SAMPLES = 128


@dataclass(frozen=True, eq=False)
class Surrogate:
    """The model of one proposal: the encoded completed trials it has seen, their values
    (higher is better) and transformed targets; ``batch`` scores candidates when q-EI over
    running trials replaces the plain acquisition."""

    model: Any
    X: np.ndarray
    y: np.ndarray
    z: np.ndarray
    batch: BatchEI | None = None


def surrogate(
    s: Settings,
    space: SpaceState,
    seed: int,
    training: list[tuple[int, Params, float]],
    pending: list[tuple[int, Params]],
    sign: float,
    n_startup: int,
    rng: np.random.Generator,
) -> Surrogate:
    """The surrogate for a proposal from the completed ``training`` trials and the running
    ``pending`` proposals (``sign`` makes higher better); ``rng`` draws q-EI's samples."""
    enc = space.encoder
    m = refit_point(s, n_startup, len(training))
    X_all = space.memo.encode([(n, p) for n, p, _ in training])
    y_all = sign * np.array([v for _, _, v in training], dtype=float)
    key = ("done", *(n for n, _, _ in training[:m]))
    model = _fit(s, space, seed, key, X_all[:m], transform_target(y_all[:m], s.target))
    conditions = hasattr(model, "condition")
    k = len(training) if conditions else m
    X, y = X_all[:k], y_all[:k]
    z = transform_target(y, s.target)
    if conditions:  # always: an earlier proposal may have conditioned it on fantasies
        model.condition(X, z)
    if not pending:
        return Surrogate(model, X, y, z)
    P = enc.encode([p for _, p in pending])
    if s.fantasize == "qei" and s.acquisition == "ei" and hasattr(model, "posterior"):
        return Surrogate(model, X, y, z, BatchEI(model, P, float(z.max()), rng))
    # fantasies: running trials' proposals at their mean, or the worst value seen
    lies = model.mean_std(P)[0] if s.fantasize in ("mean", "qei") else np.full(len(P), z.min())
    Xf, zf = np.concatenate([X, P]), np.concatenate([z, lies])
    if conditions:
        model.condition(Xf, zf)
    else:
        key = ("done", *(n for n, _, _ in training[:k]), "pending", *(n for n, _ in pending))
        model = _fit(s, space, seed, key, Xf, zf)
    return Surrogate(model, X, y, z)


def _fit(
    s: Settings, space: SpaceState, seed: int, key: tuple[Any, ...], X: np.ndarray, z: np.ndarray
) -> Any:
    """The surrogate fitted on ``X`` and transformed targets ``z``, reusing the cached fit
    where ``key`` names it."""
    if key != space.fitted_on:
        space.fitted_on = None  # a failing fit must not leave a stale key behind
        if space.model is None:
            space.model = default_surrogate(s, space.encoder, seed)
        space.model.fit(X, z)
        space.fitted_on = key
    return space.model


class BatchEI:
    """Expected improvement of a candidate added to the running proposals ``P`` (q-EI).

    ``f(P)`` is sampled from the GP's joint posterior (``samples`` draws); given a draw, the
    candidate's value is normal (the GP conditioned on it) and the batch's improvement over
    ``best`` is ``max(best, max f(P)) - best`` plus the candidate's closed-form EI over that
    threshold. The score is the mean over the draws (the first term is the same for every
    candidate; it keeps the value an expected improvement)."""

    def __init__(
        self,
        gp: Any,
        P: np.ndarray,
        best: float,
        rng: np.random.Generator,
        samples: int = QEI_SAMPLES,
    ) -> None:
        mean, var, cov = gp.posterior(P, P)
        cov = 0.5 * (cov + cov.T)
        jitter = 1e-9 * max(float(np.max(var, initial=0.0)), 1e-12)
        eye = np.eye(len(P))
        for _ in range(8):  # running proposals may coincide: a singular joint
            try:
                chol = scipy.linalg.cholesky(cov + jitter * eye, lower=True)
                break
            except np.linalg.LinAlgError:
                jitter *= 100.0
        else:
            raise np.linalg.LinAlgError("the running trials' joint posterior is not positive")
        self._factor = (chol, True)
        draws = mean + rng.standard_normal((samples, len(P))) @ chol.T
        self._gp, self._P, self._mean = gp, P, mean
        self._deviation = draws - mean  # (samples, running)
        self._threshold = np.maximum(best, draws.max(axis=1))  # (samples,)
        self._base = float(np.mean(self._threshold - best))

    def __call__(self, X: np.ndarray) -> np.ndarray:
        mean, var, cov = self._gp.posterior(X, self._P)
        if not len(X):
            return np.empty(0)
        w = scipy.linalg.cho_solve(self._factor, cov.T).T  # (candidates, running)
        cond_mean = mean[:, None] + w @ self._deviation.T  # (candidates, samples)
        cond_std = np.sqrt(np.maximum(var - (w * cov).sum(1), 0.0))[:, None]
        ei = expected_improvement(cond_mean - self._threshold, cond_std).mean(axis=1)
        out = tie_break(self._base + ei, mean)
        return np.where(np.isfinite(out), out, -np.inf)
