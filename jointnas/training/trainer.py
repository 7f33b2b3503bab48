"""Train one candidate: a function, not a framework.

``train(model, recipe, data, ...)`` composes small optional pieces from the recipe, each off at
its default (like timm): optimizer + warmup-cosine schedule, mixup, label smoothing,
dropout/drop path, EMA weights. It reports validation accuracy per epoch to an Optuna trial and
honours pruning. A non-finite loss raises ``TrainingDiverged`` so the caller can fail that trial
and go on. Randomness comes only from ``seed``: the caller's global torch RNG is left untouched.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import optuna
import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.swa_utils import AveragedModel

from jointnas.spaces.nets.blocks import DropPath
from jointnas.spaces.recipe import Recipe
from jointnas.training import checkpoint as ckpt
from jointnas.training.bn import recalibrate_bn
from jointnas.training.data import ImageData

# The recipe's ``lr`` is on SGD's scale; adaptive optimizers take a fixed fraction of it, so one
# log-uniform range serves all three. AdamW's decoupled decay is rescaled so that the per-step
# shrink lr * weight_decay matches SGD's for the same recipe values.
LR_SCALE = {"sgd": 1.0, "rmsprop": 0.05, "adamw": 0.03}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says where."""


class StepHook:
    """What a caller can plug into the training loop without copying it: a one-shot
    supernet's path sampler picks the path of every step (``before_step``), may stop training
    at an epoch's end (``end_epoch``), and keeps its state in the trainer's checkpoints
    (``state_dict``; ``config`` is part of the checkpoint's identity). Defaults do nothing."""

    def config(self) -> dict:
        return {}

    def before_step(self, model: nn.Module, step: int) -> None:
        """Called in train mode before the forward pass of global step ``step``."""

    def end_epoch(self, model: nn.Module, epoch: int) -> bool:
        """Called after epoch ``epoch``'s evaluation; True stops training there."""
        return False

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned."""


@dataclass(frozen=True)
class TrainResult:
    """Per-epoch validation accuracy and training loss, and how fast training ran."""

    val_acc: tuple[float, ...]
    train_loss: tuple[float, ...]
    seconds: float
    train_images_per_s: float
    device: str
    #: the network that was evaluated (the EMA copy when EMA is on): what to export
    evaluated: nn.Module | None = field(default=None, repr=False, compare=False)
    #: epochs restored from a checkpoint instead of trained in this call
    resumed_epochs: int = 0

    @property
    def final_acc(self) -> float:
        return self.val_acc[-1]

    @property
    def best_acc(self) -> float:
        return max(self.val_acc)


def resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but CUDA is not available")
    return dev


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """Optimizer from the recipe; no weight decay on biases and norm scales (1-d tensors)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    lr = recipe.lr * LR_SCALE[recipe.optimizer]
    wd = (
        recipe.weight_decay / LR_SCALE[recipe.optimizer]
        if recipe.optimizer == "adamw"
        else (recipe.weight_decay)
    )
    groups = [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    if recipe.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, alpha=0.9, momentum=0.9, eps=0.0316)
    return torch.optim.AdamW(groups, lr=lr)


def warmup_cosine(total_steps: int, warmup_steps: int):
    """LR multiplier per step: linear warmup to 1, then cosine decay to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def apply_regularization(model: nn.Module, recipe: Recipe) -> None:
    """Set dropout and drop-path rates of an already built model from the recipe."""
    for module in model.modules():
        if isinstance(module, DropPath):
            module.p = recipe.drop_path * module.depth_scale
        elif isinstance(module, nn.Dropout):
            module.p = recipe.dropout


def make_ema(model: nn.Module, decay: float) -> AveragedModel:
    """EMA of weights and BN statistics, with timm's warmup so short runs are not dominated by
    the initial weights: the effective decay is min(decay, (1 + n) / (10 + n))."""

    def avg_fn(avg: torch.Tensor, new: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
        return avg * d + new * (1.0 - d)

    return AveragedModel(model, avg_fn=avg_fn, use_buffers=True)


def mixed_loss(out: torch.Tensor, y: torch.Tensor, lam: float, smoothing: float) -> torch.Tensor:
    """Cross-entropy against ``y`` mixed with its reversed batch (mixup's partner) by ``lam``."""
    loss = F.cross_entropy(out, y, label_smoothing=smoothing)
    if lam < 1.0:
        partner = F.cross_entropy(out, y.flip(0), label_smoothing=smoothing)
        loss = lam * loss + (1.0 - lam) * partner
    return loss


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> float:
    """Top-1 accuracy of ``model`` over (x, y) batches already on the model's device."""
    model.eval()
    correct = total = 0
    for xb, yb in batches:
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast(xb.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            correct += int((model(xb).argmax(1) == yb).sum())
        total += len(yb)
    return correct / max(total, 1)


def train(
    model: nn.Module,
    recipe: Recipe,
    data: ImageData,
    *,
    epochs: int,
    seed: int,
    device: str | torch.device = "auto",
    trial: optuna.trial.BaseTrial | None = None,
    resolution: int | None = None,
    batch_size: int = 128,
    schedule_epochs: int | None = None,
    warmup_epochs: float = 0.25,
    ema_decay: float = 0.999,
    channels_last: bool = True,
    bn_recalibration: int = 1024,
    checkpoint: str | Path | None = None,
    hook: StepHook | None = None,
    max_steps_per_epoch: int | None = None,
) -> TrainResult:
    """Train ``model`` in place with ``recipe`` on ``data``; return per-epoch validation accuracy.

    ``schedule_epochs`` (default ``epochs``) lays the cosine schedule over a longer budget and
    stops after ``epochs``: an early-stopped run of a full-budget training, as fidelity
    calibration compares. ``resolution`` is the candidate's input size: each batch is resized
    (and augmented: the data's base policy, then RandAugment at ``recipe.augment``) to it on
    the training device. ``max_steps_per_epoch`` caps the steps of every epoch (a smoke test
    of a large set; the schedule follows the capped epoch). On CUDA, training
    uses bf16/fp16 autocast. ``channels_last`` is on by default on every device: on 2 CPU cores it
    measured 1.19x images/s (geomean of three candidates; 1.64x on a 3-MFLOPs net, 0.92-0.98x on
    the smallest), see BENCHMARKS.md.
    Before each evaluation, BatchNorm statistics are recomputed on ``bn_recalibration``
    training images (0 turns it off): see ``jointnas.training.bn`` for why short runs need it.
    With ``checkpoint`` (a file path), the state is saved after every epoch and a matching
    checkpoint found there is resumed from, with the same result as an uninterrupted run.
    ``hook`` (a ``StepHook``) is called before every step and after every epoch; it may stop
    training early, and its state travels in the checkpoints.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    schedule_epochs = epochs if schedule_epochs is None else schedule_epochs
    if schedule_epochs < epochs:
        raise ValueError(f"schedule_epochs ({schedule_epochs}) must be >= epochs ({epochs})")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    amp_dtype = None
    if cuda:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if max_steps_per_epoch is not None and max_steps_per_epoch < 1:
        raise ValueError(f"max_steps_per_epoch must be >= 1, got {max_steps_per_epoch}")
    model.to(dev)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    apply_regularization(model, recipe)
    optimizer = make_optimizer(model, recipe)
    steps_per_epoch = math.ceil(data.num_train / batch_size)
    if max_steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, max_steps_per_epoch)
    total = steps_per_epoch * schedule_epochs
    warmup = min(total // 2, round(warmup_epochs * steps_per_epoch))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total, warmup))
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    ema = make_ema(model, ema_decay) if recipe.ema else None
    rng = np.random.default_rng(seed)
    shuffle = torch.Generator().manual_seed(seed)

    val_acc: list[float] = []
    losses: list[float] = []
    train_seconds = 0.0
    stopped = False
    start = time.perf_counter()
    meta = {
        "seed": seed,
        "batch_size": batch_size,
        "schedule_epochs": schedule_epochs,
        "train_images": data.num_train,
        "steps_per_epoch": steps_per_epoch,
        "resolution": resolution,
        "recipe": asdict(recipe),
        "hook": hook.config() if hook is not None else None,
    }
    resumed = ckpt.load(checkpoint, meta)
    scored = ema.module if ema is not None else model
    with torch.random.fork_rng(devices=[dev] if cuda else []):
        torch.manual_seed(seed)
        if resumed is not None:
            model.load_state_dict(resumed["model"])
            optimizer.load_state_dict(resumed["optimizer"])
            schedule.load_state_dict(resumed["schedule"])
            scaler.load_state_dict(resumed["scaler"])
            if ema is not None:
                ema.load_state_dict(resumed["ema"])
            shuffle.set_state(resumed["shuffle"])
            rng.bit_generator.state = resumed["mixup_rng"]
            torch.set_rng_state(resumed["torch_rng"])
            if cuda:
                torch.cuda.set_rng_state(resumed["cuda_rng"], dev)
            val_acc, losses = list(resumed["val_acc"]), list(resumed["losses"])
            train_seconds = float(resumed["train_seconds"])
            stopped = bool(resumed.get("stopped", False))
            if hook is not None:
                hook.load_state_dict(resumed["hook"])
            for epoch, acc in enumerate(val_acc):  # the resumed trial shows the whole curve
                if trial is not None:
                    trial.report(acc, epoch)
        for epoch in range(len(val_acc), epochs):
            if stopped:
                break
            model.train()
            t0 = time.perf_counter()
            order = torch.randperm(data.num_train, generator=shuffle)
            loss_sum = torch.zeros((), device=dev)
            batches = data.train_batches(
                order,
                batch_size=batch_size,
                device=dev,
                resolution=resolution,
                strength=recipe.augment,
                steps=steps_per_epoch,
            )
            for step, (xb, yb) in enumerate(batches):
                if hook is not None:
                    hook.before_step(model, epoch * steps_per_epoch + step)
                lam = float(rng.beta(recipe.mixup, recipe.mixup)) if recipe.mixup > 0 else 1.0
                if lam < 1.0:
                    xb = lam * xb + (1.0 - lam) * xb.flip(0)
                if channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    loss = mixed_loss(model(xb), yb, lam, recipe.label_smoothing)
                if not torch.isfinite(loss):  # one host sync per step; cheap for small models
                    where = f"epoch {epoch + 1}, step {step + 1}"
                    raise TrainingDiverged(f"non-finite loss ({float(loss.detach())}) at {where}")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                schedule.step()
                if ema is not None:
                    ema.update_parameters(model)
                loss_sum += loss.detach()
            if cuda:
                torch.cuda.synchronize(dev)
            train_seconds += time.perf_counter() - t0
            losses.append(float(loss_sum) / steps_per_epoch)
            if bn_recalibration > 0:
                fit = (  # in training-sized batches: 1024 images at 272 px are 0.9 GB
                    data.fit_images(chunk, device=dev, resolution=resolution)
                    for chunk in order[:bn_recalibration].split(batch_size)
                )
                with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    recalibrate_bn(scored, fit, channels_last=channels_last)
            val = data.val_batches(device=dev, resolution=resolution, batch_size=batch_size)
            acc = evaluate(scored, val, amp_dtype=amp_dtype, channels_last=channels_last)
            val_acc.append(acc)
            stopped = hook is not None and hook.end_epoch(model, epoch)
            if checkpoint is not None:
                state = {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(),
                    "scaler": scaler.state_dict(),
                    "ema": ema.state_dict() if ema is not None else {},
                    "shuffle": shuffle.get_state(),
                    "mixup_rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state(dev) if cuda else torch.zeros(0),
                    "val_acc": val_acc,
                    "losses": losses,
                    "train_seconds": train_seconds,
                    "hook": hook.state_dict() if hook is not None else {},
                    "stopped": stopped,
                }
                ckpt.save(checkpoint, meta, state)
            if trial is not None:
                trial.report(acc, epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after epoch {epoch + 1} at val acc {acc:.4f}")
    return TrainResult(
        val_acc=tuple(val_acc),
        train_loss=tuple(losses),
        seconds=time.perf_counter() - start,
        train_images_per_s=len(val_acc)
        * min(data.num_train, steps_per_epoch * batch_size)
        / max(train_seconds, 1e-9),
        device=str(dev),
        evaluated=scored,
        resumed_epochs=0 if resumed is None else len(resumed["val_acc"]),
    )
