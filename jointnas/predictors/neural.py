"""The neural accuracy predictor of JointNAS (Dai et al., 2020).

An architecture encoder (MLP) maps the architecture's encoded columns to an embedding. A proxy
head on the embedding predicts cheap statistics (log MFLOPs, log params): it is pretrained on
``proxy_samples`` random candidates, free because the cost is analytic, so the embedding already
orders architectures by size before any accuracy is seen. The accuracy head reads the embedding
plus the recipe's columns. Training on accuracies (standardised, Huber loss) runs in two phases:
embedding frozen for ``frozen_epochs``, then everything for ``full_epochs``, keeping the weights
with the best loss on a held-out split. A space with no batch cost skips the proxy pretraining.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from jointnas.predictors.base import Predictor, PredictorError
from jointnas.spaces.base import Space
from jointnas.spaces.nets.cost import cost_batch

LOSSES = ("huber", "mse")
WEIGHTS = "weights.safetensors"


class _Net(nn.Module):
    def __init__(self, d_arch: int, d_recipe: int, hidden: int, embedding: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(d_arch, hidden), nn.SiLU(), nn.Linear(hidden, embedding), nn.SiLU()
        )
        self.proxy = nn.Linear(embedding, 2)
        self.head = nn.Sequential(
            nn.Linear(embedding + d_recipe, hidden), nn.SiLU(), nn.Linear(hidden, 1)
        )

    def forward(self, arch: torch.Tensor, recipe: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.encoder(arch), recipe], dim=1)).squeeze(1)


def proxy_targets(space: Space, X: np.ndarray, *, num_classes: int, in_channels: int):
    """(log MFLOPs, log params) of encoded rows, or None where the space has no batch cost."""
    try:
        c = cost_batch(space, X, num_classes=num_classes, in_channels=in_channels)
    except NotImplementedError:
        return None
    return np.stack([np.log(np.asarray(c.flops, float)), np.log(np.asarray(c.params, float))], 1)


class NeuralPredictor(Predictor):
    """The paper's predictor; every ablation of the paper is a constructor switch."""

    kind = "mlp"

    def __init__(
        self,
        *,
        space: Space,
        seed: int = 0,
        task=None,
        hidden: int = 128,
        embedding: int = 64,
        proxy_samples: int = 10_000,
        proxy_epochs: int = 30,
        pretrain: bool = True,
        freeze: bool = True,
        frozen_epochs: int = 150,
        full_epochs: int = 150,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        loss: str = "huber",
        batch_size: int = 32,
        val_fraction: float = 0.2,
    ) -> None:
        super().__init__(space=space, seed=seed, task=task)
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if not 0.0 < val_fraction < 0.5:
            raise ValueError(f"val_fraction must be in (0, 0.5), got {val_fraction}")
        for name, value in (
            ("hidden", hidden),
            ("embedding", embedding),
            ("batch_size", batch_size),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if frozen_epochs < 0 or full_epochs < 0 or frozen_epochs + full_epochs < 1:
            raise ValueError("frozen_epochs and full_epochs must be >= 0, and not both 0")
        self.hidden, self.embedding = hidden, embedding
        self.proxy_samples, self.proxy_epochs, self.pretrain = proxy_samples, proxy_epochs, pretrain
        self.freeze, self.frozen_epochs, self.full_epochs = freeze, frozen_epochs, full_epochs
        self.lr, self.weight_decay, self.loss = lr, weight_decay, loss
        self.batch_size, self.val_fraction = batch_size, val_fraction
        self._recipe = space.recipe_mask()
        self.net = self._new_net()
        self.proxy_trained = False

    def _new_net(self) -> _Net:
        d_recipe = int(self._recipe.sum())
        return _Net(len(self._recipe) - d_recipe, d_recipe, self.hidden, self.embedding)

    def hyperparameters(self) -> dict[str, Any]:
        names = [
            "hidden",
            "embedding",
            "proxy_samples",
            "proxy_epochs",
            "pretrain",
            "freeze",
            "frozen_epochs",
            "full_epochs",
            "lr",
            "weight_decay",
            "loss",
            "batch_size",
            "val_fraction",
        ]
        return {n: getattr(self, n) for n in names}

    def _split(self, X: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        X = torch.as_tensor(X, dtype=torch.float32)
        return X[:, torch.as_tensor(~self._recipe)], X[:, torch.as_tensor(self._recipe)]

    def _criterion(self) -> nn.Module:
        return nn.HuberLoss(delta=1.0) if self.loss == "huber" else nn.MSELoss()

    def _fit(self, X: np.ndarray, z: np.ndarray) -> None:
        rng = np.random.default_rng(self.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.net = self._new_net()
            gen = torch.Generator().manual_seed(self.seed)
            if self.pretrain:
                self._pretrain_proxy(rng, gen)
            order = rng.permutation(len(X))
            n_val = max(1, round(self.val_fraction * len(X)))
            val, fit = order[:n_val], order[n_val:]
            data = (*self._split(X[fit]), torch.as_tensor(z[fit], dtype=torch.float32))
            held = (*self._split(X[val]), torch.as_tensor(z[val], dtype=torch.float32))
            if self.freeze:
                phases = [
                    (False, self.frozen_epochs, self.lr),
                    (True, self.full_epochs, self.lr / 3),
                ]
            else:
                phases = [(True, self.frozen_epochs + self.full_epochs, self.lr)]
            best = (float("inf"), {k: v.clone() for k, v in self.net.state_dict().items()})
            for train_encoder, epochs, lr in phases:
                best = self._train_accuracy(data, held, train_encoder, epochs, lr, gen, best)
            self.net.load_state_dict(best[1])
        self.net.eval()

    def _pretrain_proxy(self, rng: np.random.Generator, gen: torch.Generator) -> None:
        """Fit encoder + proxy head on random candidates' analytic log-cost."""
        X = self.space.encode(
            self.space.encoder.from_unit(
                rng.random((self.proxy_samples, len(self.space.encoder.names)))
            )
        )
        t = proxy_targets(
            self.space, X, num_classes=self.task.num_classes, in_channels=self.task.in_channels
        )
        if t is None:
            return
        t = (t - t.mean(0)) / (t.std(0) + 1e-12)
        arch = self._split(X)[0]
        target = torch.as_tensor(t, dtype=torch.float32)
        params = [*self.net.encoder.parameters(), *self.net.proxy.parameters()]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        for _ in range(self.proxy_epochs):
            for idx in torch.randperm(len(arch), generator=gen).split(256):
                loss = nn.functional.mse_loss(
                    self.net.proxy(self.net.encoder(arch[idx])), target[idx]
                )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        self.proxy_trained = True

    def _train_accuracy(self, data, held, train_encoder, epochs, lr, gen, best):
        self.net.encoder.requires_grad_(train_encoder)
        params = [p for p in self.net.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=self.weight_decay)
        crit = self._criterion()
        arch, recipe, z = data
        for _ in range(epochs):
            self.net.train()
            for idx in torch.randperm(len(z), generator=gen).split(self.batch_size):
                loss = crit(self.net(arch[idx], recipe[idx]), z[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            self.net.eval()
            with torch.no_grad():
                val_loss = float(crit(self.net(held[0], held[1]), held[2]))
            if val_loss < best[0]:
                best = (val_loss, {k: v.clone() for k, v in self.net.state_dict().items()})
        self.net.encoder.requires_grad_(True)
        return best

    def _predict(self, X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.net(*self._split(X)).double().numpy()

    def predict_proxy(self, X: np.ndarray) -> np.ndarray:
        """The proxy head's standardised (log MFLOPs, log params) for encoded rows."""
        with torch.no_grad():
            arch = self._split(self._check_matrix(X))[0]
            return self.net.proxy(self.net.encoder(arch)).double().numpy()

    def _save(self, path: Path) -> None:
        state = {k: v.detach().contiguous() for k, v in self.net.state_dict().items()}
        save_file(state, str(path / WEIGHTS), metadata={"kind": self.kind})

    def _load(self, path: Path) -> None:
        file = path / WEIGHTS
        if not file.is_file():
            raise PredictorError(f"{str(path)!r} has no {WEIGHTS}")
        self.net.load_state_dict(load_file(str(file)), strict=True)
        self.net.eval()
