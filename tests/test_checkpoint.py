"""Mid-training checkpoints: a training interrupted after an epoch and resumed from its
checkpoint gives exactly the numbers of an uninterrupted one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jointnas.spaces.fbnetv3 import FBNetV3Space, Recipe
from jointnas.spaces.nets.model import build_model
from jointnas.training import checkpoint
from jointnas.training.trainer import train

# every random stream in use: mixup (numpy), dropout/drop path (torch), shuffling, EMA
RECIPE = Recipe(
    optimizer="rmsprop",
    lr=0.1,
    weight_decay=1e-4,
    mixup=0.3,
    dropout=0.1,
    drop_path=0.1,
    ema=True,
    label_smoothing=0.1,
)


@pytest.fixture(scope="module")
def setup(digits, one_torch_thread):
    space = FBNetV3Space()
    arch = space.decode(space.sample(np.random.default_rng(3))).arch
    data = digits.subset(train=512, val=256)

    def model():
        return build_model(arch, data.num_classes, data.in_channels, seed=7)

    return model, data, arch.resolution


def _state(result):
    return {k: v.clone() for k, v in result.evaluated.state_dict().items()}


def test_a_resumed_training_equals_an_uninterrupted_one(setup, tmp_path):
    model, data, res = setup
    kw = dict(seed=5, device="cpu", resolution=res, batch_size=64, schedule_epochs=3)
    whole = train(model(), RECIPE, data, epochs=3, **kw)

    path = tmp_path / "ckpt.pt"
    first = train(model(), RECIPE, data, epochs=1, checkpoint=path, **kw)  # "killed" after 1
    assert path.is_file() and first.val_acc == whole.val_acc[:1]
    resumed = train(model(), RECIPE, data, epochs=3, checkpoint=path, **kw)
    assert resumed.resumed_epochs == 1
    assert resumed.val_acc == whole.val_acc
    assert resumed.train_loss == whole.train_loss
    a, b = _state(whole), _state(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_for_other_settings_or_a_damaged_one_is_ignored(setup, tmp_path):
    model, data, res = setup
    kw = dict(device="cpu", resolution=res, batch_size=64, schedule_epochs=2)
    path = tmp_path / "ckpt.pt"
    train(model(), RECIPE, data, epochs=1, seed=1, checkpoint=path, **kw)
    other_seed = train(model(), RECIPE, data, epochs=1, seed=2, checkpoint=path, **kw)
    assert other_seed.resumed_epochs == 0  # made with seed 1: not trusted
    path.write_bytes(path.read_bytes()[:100])  # truncated
    assert checkpoint.load(path, {"seed": 2}) is None
    assert train(model(), RECIPE, data, epochs=1, seed=2, checkpoint=path, **kw).resumed_epochs == 0
