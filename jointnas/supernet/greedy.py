"""GreedyNAS (You et al., 2020): train the supernet on the paths that look good.

Each round draws ``m`` paths (from the candidate pool with probability epsilon, else uniformly),
scores them by their loss on a fixed held-out batch of training images, and queues the best
``k``; the next ``k`` steps train those paths, one each. The candidate pool keeps the ``size``
best paths scored so far; epsilon rises linearly from 0 to 0.8 over the greedy steps, so the
sampling shifts from exploration to exploitation. Training stops early once the pool has
settled: fewer than ``stop_turnover`` (0.08) of its paths are new since the previous epoch.

Scoring runs the supernet in train mode (each path's own batch statistics, since the running
ones mix every path) under no_grad, then restores every BN buffer and the path it found, so
scoring neither moves the statistics nor changes what the next step trains (tested: the trained
paths are exactly the queued ones). The first ``warmup`` fraction of steps samples uniformly,
as scores of an untrained supernet mean nothing.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from jointnas.supernet.paths import PathSampler
from jointnas.training.trainer import StepHook

Path = tuple[int, ...]


class CandidatePool:
    """The ``size`` best distinct paths by their latest held-out loss (lower is better)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"pool size must be >= 1, got {size}")
        self.size = size
        self.entries: dict[Path, float] = {}

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def full(self) -> bool:
        return len(self.entries) >= self.size

    def update(self, path: Path, loss: float) -> None:
        self.entries[tuple(path)] = float(loss)
        if len(self.entries) > self.size:
            del self.entries[max(self.entries, key=self.entries.__getitem__)]

    def sample(self, rng: np.random.Generator) -> Path:
        paths = list(self.entries)
        return paths[int(rng.integers(len(paths)))]

    def best(self, n: int | None = None) -> list[tuple[Path, float]]:
        """The pool's paths, best first."""
        ranked = sorted(self.entries.items(), key=lambda kv: kv[1])
        return ranked if n is None else ranked[:n]

    def turnover(self, previous: set[Path]) -> float:
        """Fraction of the current pool that was not in ``previous``."""
        if not self.entries:
            return 1.0
        return sum(p not in previous for p in self.entries) / len(self.entries)


class GreedyPaths(StepHook):
    """The GreedyNAS path schedule as a trainer hook (see the module docstring)."""

    def __init__(
        self,
        sampler: PathSampler,
        *,
        x_score: torch.Tensor,
        y_score: torch.Tensor,
        total_steps: int,
        m: int = 10,
        k: int = 5,
        pool_size: int = 50,
        epsilon: tuple[float, float] = (0.0, 0.8),
        warmup: float = 0.2,
        stop_turnover: float = 0.08,
    ) -> None:
        if not 1 <= k <= m:
            raise ValueError(f"GreedyNAS needs 1 <= k <= m, got m={m}, k={k}")
        if not (0.0 <= epsilon[0] <= epsilon[1] <= 1.0):
            raise ValueError(f"epsilon must rise within [0, 1], got {epsilon}")
        if not 0.0 <= warmup < 1.0:
            raise ValueError(f"warmup is a fraction of the steps in [0, 1), got {warmup}")
        if len(x_score) == 0 or len(x_score) != len(y_score):
            raise ValueError("the scoring batch needs images and as many labels")
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        self.sampler, self.m, self.k = sampler, m, k
        self.x_score, self.y_score = x_score, y_score
        self.total_steps, self.epsilon, self.warmup = total_steps, epsilon, warmup
        self.stop_turnover = stop_turnover
        self.pool = CandidatePool(pool_size)
        self.queue: list[Path] = []
        self.history: list[float] = []  # pool turnover per epoch
        self.snapshot: set[Path] = set()
        self.scored, self.score_seconds = 0, 0.0
        self.trained: list[Path] = []  # the paths of this process's steps, in order
        self._device_batch: tuple[torch.Tensor, torch.Tensor] | None = None

    def config(self) -> dict[str, Any]:
        return {
            "kind": "greedy",
            **self.sampler.config(),
            "m": self.m,
            "k": self.k,
            "pool_size": self.pool.size,
            "epsilon": list(self.epsilon),
            "warmup": self.warmup,
            "stop_turnover": self.stop_turnover,
            "total_steps": self.total_steps,
            "score_images": len(self.x_score),
        }

    def epsilon_at(self, step: int) -> float:
        start = self.warmup * self.total_steps
        frac = min(1.0, max(0.0, (step - start) / max(1.0, self.total_steps - start)))
        return self.epsilon[0] + frac * (self.epsilon[1] - self.epsilon[0])

    def before_step(self, model: nn.Module, step: int) -> None:
        if step < self.warmup * self.total_steps:
            path = self.sampler.sample()
        else:
            if not self.queue:
                self.refill(model, step)
            path = self.queue.pop(0)
        model.set_path(path)
        self.trained.append(path)

    def refill(self, model: nn.Module, step: int) -> None:
        """Draw m paths, score them, queue the best k and offer them to the pool."""
        eps = self.epsilon_at(step)
        rng = self.sampler.rng
        drawn = [
            self.pool.sample(rng)
            if len(self.pool) and rng.random() < eps
            else self.sampler.sample()
            for _ in range(self.m)
        ]
        losses = self.score(model, drawn)
        best = np.argsort(losses, kind="stable")[: self.k]
        self.queue = [drawn[i] for i in best]
        for i in best:
            self.pool.update(drawn[i], losses[i])

    def score(self, model: nn.Module, paths: list[Path]) -> list[float]:
        """Held-out loss of each path; BN buffers, the path and the mode are left as found."""
        t0 = time.perf_counter()
        first = next(model.parameters())
        if self._device_batch is None or self._device_batch[0].device != first.device:
            x = self.x_score.to(first.device)
            if first.ndim == 4 and first.is_contiguous(memory_format=torch.channels_last):
                x = x.contiguous(memory_format=torch.channels_last)
            self._device_batch = (x, self.y_score.to(first.device))
        x, y = self._device_batch
        saved = {name: b.clone() for name, b in model.named_buffers()}
        path, was_training = model.path, model.training
        losses = []
        model.train()
        cuda = first.device.type == "cuda"
        try:
            with torch.no_grad(), torch.autocast(first.device.type, enabled=cuda):
                for p in paths:
                    model.set_path(p)
                    losses.append(float(F.cross_entropy(model(x).float(), y)))
        finally:
            buffers = dict(model.named_buffers())
            for name, value in saved.items():
                buffers[name].copy_(value)
            model.path = path
            model.train(was_training)
        self.scored += len(paths)
        self.score_seconds += time.perf_counter() - t0
        return losses

    def end_epoch(self, model: nn.Module, epoch: int) -> bool:
        turnover = self.pool.turnover(self.snapshot)
        self.snapshot = set(self.pool.entries)
        self.history.append(round(turnover, 4))
        return self.should_stop()

    def should_stop(self) -> bool:
        """The pool is full, was full an epoch ago, and less than ``stop_turnover`` changed."""
        return self.pool.full and len(self.history) >= 2 and self.history[-1] < self.stop_turnover

    def state_dict(self) -> dict[str, Any]:
        return {
            **self.sampler.state_dict(),
            "pool": [[list(p), loss] for p, loss in self.pool.entries.items()],
            "queue": [list(p) for p in self.queue],
            "history": list(self.history),
            "snapshot": [list(p) for p in sorted(self.snapshot)],
            "scored": self.scored,
            "score_seconds": self.score_seconds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state)
        self.pool.entries = {tuple(p): float(loss) for p, loss in state["pool"]}
        self.queue = [tuple(p) for p in state["queue"]]
        self.history = list(state["history"])
        self.snapshot = {tuple(p) for p in state["snapshot"]}
        self.scored, self.score_seconds = int(state["scored"]), float(state["score_seconds"])
