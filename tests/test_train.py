"""Trainer: learns for real, is deterministic, reports to Optuna, fails cleanly on NaN."""

from __future__ import annotations

import itertools
import math

import numpy as np
import optuna
import pytest
import torch

from jointnas.spaces.fbnetv3 import FBNetV3Space, Recipe
from jointnas.spaces.nets.model import build_model
from jointnas.training.bn import recalibrate_bn
from jointnas.training.data import Dataset, load_dataset
from jointnas.training.trainer import (
    LR_SCALE,
    TrainingDiverged,
    apply_regularization,
    make_optimizer,
    train,
    warmup_cosine,
)

SGD = Recipe(optimizer="sgd", lr=0.1, weight_decay=1e-4)


@pytest.fixture(scope="module")
def data() -> Dataset:
    # no augmentation: these tests are about the trainer learning in 24 steps, where any
    # augmentation slows it down (test_augment covers augmentation)
    return load_dataset("mnist5k", seed=0, augment="none").subset(train=1500, val=500)


@pytest.fixture(scope="module")
def arch():
    space = FBNetV3Space()
    return space.decode(space.smallest_params()).arch


def test_reaches_accuracy_far_above_chance(data, arch):
    model = build_model(arch, 10, 1, seed=0)
    result = train(model, SGD, data, epochs=2, seed=0, resolution=16)
    assert len(result.val_acc) == 2 and len(result.train_loss) == 2
    assert result.final_acc > 0.6  # chance is 0.1
    assert result.train_loss[1] < result.train_loss[0]
    assert result.train_images_per_s > 0 and result.device == "cpu"


def test_every_recipe_knob_on_still_learns(data, arch):
    recipe = Recipe(
        optimizer="rmsprop",
        lr=0.1,
        weight_decay=1e-4,
        mixup=0.2,
        dropout=0.2,
        drop_path=0.2,
        ema=True,
        label_smoothing=0.1,
    )
    result = train(build_model(arch, 10, 1, seed=0), recipe, data, epochs=2, seed=0, resolution=16)
    assert result.final_acc > 0.4


def test_deterministic_on_cpu_and_leaves_global_rng_alone(data, arch):
    recipe = Recipe(optimizer="adamw", lr=0.1, weight_decay=1e-4, mixup=0.3, drop_path=0.1)
    state = torch.get_rng_state()
    runs = [
        train(build_model(arch, 10, 1, seed=1), recipe, data, epochs=1, seed=3, resolution=16)
        for _ in range(2)
    ]
    assert runs[0].val_acc == runs[1].val_acc
    assert runs[0].train_loss == runs[1].train_loss
    assert torch.equal(state, torch.get_rng_state())
    other = train(build_model(arch, 10, 1, seed=1), recipe, data, epochs=1, seed=4, resolution=16)
    assert other.train_loss != runs[0].train_loss


def test_nan_loss_raises_training_diverged(arch, nan_digits):
    broken = nan_digits
    with pytest.raises(TrainingDiverged, match=r"non-finite loss \(nan\) at epoch 1, step 1"):
        train(build_model(arch, 10, 1, seed=0), SGD, broken, epochs=1, seed=0, resolution=16)


class _PruneAll(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_reports_each_epoch_and_honours_pruning(data, arch):
    study = optuna.create_study(direction="maximize", pruner=_PruneAll())
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned, match="after epoch 1"):
        train(
            build_model(arch, 10, 1, seed=0),
            SGD,
            data,
            epochs=3,
            seed=0,
            trial=trial,
            resolution=16,
        )
    assert list(trial.storage.get_trial(trial._trial_id).intermediate_values) == [0]

    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    result = train(
        build_model(arch, 10, 1, seed=0), SGD, data, epochs=2, seed=0, trial=trial, resolution=16
    )
    reported = study._storage.get_trial(trial._trial_id).intermediate_values
    assert reported == {0: result.val_acc[0], 1: result.val_acc[1]}


def test_schedule_warmup_then_cosine_to_zero():
    f = warmup_cosine(total_steps=100, warmup_steps=10)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(55) == pytest.approx(0.5)
    assert f(100) == pytest.approx(0.0, abs=1e-12)
    values = [f(s) for s in range(10, 101)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_optimizer_scales_and_regularization(arch):
    model = build_model(arch, 10, 1, seed=0)
    for name in ("sgd", "rmsprop", "adamw"):
        opt = make_optimizer(model, Recipe(optimizer=name, lr=0.2, weight_decay=1e-4))
        assert opt.param_groups[0]["lr"] == pytest.approx(0.2 * LR_SCALE[name])
        assert opt.param_groups[1]["weight_decay"] == 0.0  # no decay on biases / BN
    apply_regularization(
        model, Recipe(optimizer="sgd", lr=0.1, weight_decay=0.0, dropout=0.25, drop_path=0.2)
    )
    assert model.head.dropout.p == 0.25
    rates = [m.p for m in model.modules() if type(m).__name__ == "DropPath"]
    assert rates and max(rates) <= 0.2 and rates == sorted(rates)


def test_bad_arguments(data, arch):
    model = build_model(arch, 10, 1, seed=0)
    with pytest.raises(ValueError, match="epochs"):
        train(model, SGD, data, epochs=0, seed=0)
    with pytest.raises(ValueError, match="schedule_epochs"):
        train(model, SGD, data, epochs=3, schedule_epochs=2, seed=0)
    with pytest.raises(ValueError, match="dropout"):
        Recipe(optimizer="sgd", lr=0.1, weight_decay=0.0, dropout=1.0)
    with pytest.raises(ValueError, match="optimizer"):
        Recipe(optimizer="lion", lr=0.1, weight_decay=0.0)


def test_bn_recalibration_gives_exact_batch_statistics(arch):
    model = build_model(arch, 10, 1, seed=0)
    x = torch.randn(64, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 3 + 1
    recalibrate_bn(model, x, batch_size=64)
    stem_bn = model.stem[1]
    with torch.no_grad():
        conv_out = model.stem[0](x)
    assert torch.allclose(stem_bn.running_mean, conv_out.mean((0, 2, 3)), atol=1e-5)
    assert stem_bn.momentum == 0.1 and not math.isnan(float(stem_bn.running_var.sum()))
    assert model.training  # mode restored
    assert np.isfinite(model.eval()(x).detach().numpy()).all()
