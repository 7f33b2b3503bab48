"""The streaming data path: image folders and torch Datasets read by DataLoader workers."""

from __future__ import annotations

import signal
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from helpers import load_trials, start_run, trained, wait_for
from PIL import Image

from jointnas.errors import DatasetError
from jointnas.spaces.fbnetv3 import FBNetV3Space, Recipe
from jointnas.spaces.nets.model import build_model
from jointnas.training import data as data_module
from jointnas.training.data import Dataset, load_dataset
from jointnas.training.streaming import StreamingDataset
from jointnas.training.trainer import train

CPU = torch.device("cpu")


def _folder(root: Path, *, n: int = 24, size: int = 20, mode: str = "L") -> Path:
    """Three classes told apart by brightness and stripes, ``n`` PNGs each."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(("dark", "bright", "striped")):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            base = np.full((size, size), 40 + 160 * (k == 1), dtype=np.float64)
            if k == 2:
                base[:, ::3] = 230
            pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
            img = Image.fromarray(pixels)
            (img.convert("RGB") if mode == "RGB" else img).save(root / name / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _folder(tmp_path_factory.mktemp("stream") / "shapes")


def _stream(path: Path, **kwargs) -> StreamingDataset:
    return load_dataset(str(path), mode="stream", val_fraction=0.25, **kwargs)


def test_a_streamed_folder_splits_and_batches_like_the_in_memory_one(folder: Path) -> None:
    data = _stream(folder, workers=0)
    memory = load_dataset(str(folder), mode="memory", val_fraction=0.25)
    assert isinstance(data, StreamingDataset) and isinstance(memory, Dataset)
    assert (data.num_train, data.num_val, data.num_classes, data.in_channels) == (54, 18, 3, 1)
    assert (memory.num_train, memory.num_val) == (54, 18)
    assert data.augment.label == "rrc-flip"  # the default for a folder
    batches = list(data.train_batches(torch.randperm(54), batch_size=16, device=CPU, resolution=12))
    assert [len(y) for _, y in batches] == [16, 16, 16, 6]
    assert batches[0][0].shape == (16, 1, 12, 12) and batches[0][0].dtype == torch.float32
    val = torch.cat([x for x, _ in data.val_batches(device=CPU, resolution=12)])
    assert val.shape == (18, 1, 12, 12)
    assert abs(float(val.mean())) < 0.5  # normalised with the train split's statistics


def test_the_same_seed_reads_the_same_images_whatever_the_number_of_workers(folder) -> None:
    """Each image's crop is drawn from its own seed, so workers only change the speed."""
    out = []
    for workers in (0, 2):
        data = _stream(folder, workers=workers)
        torch.manual_seed(5)
        order = torch.randperm(data.num_train)
        out.append(
            torch.cat(
                [
                    x
                    for x, _ in data.train_batches(
                        order, batch_size=10, device=CPU, resolution=16, steps=3
                    )
                ]
            )
        )
    assert out[0].shape == (30, 1, 16, 16)
    assert torch.equal(out[0], out[1])


def test_training_on_a_stream_learns_and_honours_max_steps(folder: Path) -> None:
    space = FBNetV3Space()
    arch = space.decode(space.smallest_params()).arch
    data = _stream(folder, workers=1, augment="crop")
    recipe = Recipe(optimizer="adamw", lr=0.1, augment=0.3)
    kw = dict(epochs=3, seed=0, resolution=16, batch_size=8, bn_recalibration=32)
    result = train(build_model(arch, 3, 1, seed=0), recipe, data, max_steps_per_epoch=5, **kw)
    assert len(result.val_acc) == 3
    assert result.best_acc > 0.5  # chance is 1/3
    again = train(build_model(arch, 3, 1, seed=0), recipe, data, max_steps_per_epoch=5, **kw)
    assert again.val_acc == result.val_acc  # seeded end to end


def test_auto_streams_a_folder_too_large_for_the_memory_budget(folder, monkeypatch) -> None:
    assert isinstance(load_dataset(str(folder), workers=0), Dataset)  # 72 tiny images fit
    monkeypatch.setattr(data_module, "memory_budget", lambda: 1000)
    assert isinstance(load_dataset(str(folder), workers=0), StreamingDataset)


def test_a_torch_dataset_streams_with_its_targets_or_its_items(folder: Path) -> None:
    class Arrays(torch.utils.data.Dataset):
        def __init__(self, with_targets: bool) -> None:
            rng = np.random.default_rng(0)
            self.x = rng.integers(0, 255, (30, 10, 10, 3), dtype=np.uint8)  # HWC colour
            labels = [i % 2 for i in range(30)]
            if with_targets:
                self.targets = labels
            self.y = labels

        def __len__(self) -> int:
            return len(self.y)

        def __getitem__(self, i: int):
            return self.x[i], self.y[i]

    for with_targets in (True, False):
        data = load_dataset(Arrays(with_targets), val_fraction=0.2, workers=0)
        assert isinstance(data, StreamingDataset)
        assert (data.num_train, data.num_val, data.num_classes) == (24, 6, 2)
        assert data.in_channels == 3 and data.image_size == 10
        x, y = next(iter(data.val_batches(device=CPU)))
        assert x.shape == (6, 3, 10, 10) and set(y.tolist()) == {0, 1}
    with pytest.raises(DatasetError, match="a torch Dataset is streamed"):
        load_dataset(Arrays(True), mode="memory")


def test_bad_files_in_a_streamed_folder_are_dropped_and_counted(tmp_path: Path) -> None:
    root = _folder(tmp_path / "bad", n=6, size=40)
    (root / "dark" / "junk.png").write_bytes(b"not an image at all")
    noise = np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "whole.png")
    whole = (tmp_path / "whole.png").read_bytes()
    (root / "bright" / "cut.png").write_bytes(whole[: len(whole) // 2])  # decodes, then fails
    with pytest.warns(UserWarning, match="skipped 1 file"):
        data = _stream(root, workers=0)
    assert data.num_train + data.num_val == 19  # 18 good + the truncated one
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # the truncated file is in one of the splits
            list(
                data.train_batches(
                    torch.arange(data.num_train), batch_size=8, device=CPU, resolution=16
                )
            )
            list(data.val_batches(device=CPU, resolution=16))
    text = " | ".join(str(w.message) for w in caught)
    assert "skipped 1 image(s) that failed to decode" in text
    assert "smaller than the candidate's resolution" not in text


def test_a_resolution_above_the_images_warns_with_a_count(tmp_path: Path) -> None:
    data = _stream(_folder(tmp_path / "small", n=4, size=8), workers=0)
    with pytest.warns(UserWarning, match=r"\d+ image\(s\) smaller than the candidate's "):
        list(data.val_batches(device=CPU, resolution=32))


def test_a_folder_that_disappears_mid_run_ends_in_one_line(tmp_path: Path) -> None:
    root = _folder(tmp_path / "gone", n=4)
    data = _stream(root, workers=0)
    root.rename(tmp_path / "moved")
    with pytest.raises(DatasetError, match="image files are gone mid-run") as info:
        list(data.val_batches(device=CPU, resolution=12))
    assert "\n" not in str(info.value)


def test_streaming_arrays_or_builtins_is_refused() -> None:
    with pytest.raises(DatasetError, match="streaming reads an image folder or a torch Dataset"):
        load_dataset("digits", mode="stream")


def test_a_streamed_training_resumed_from_its_checkpoint_equals_an_uninterrupted_one(
    folder: Path, tmp_path: Path
) -> None:
    """The per-image crop seeds come from the trainer's checkpointed RNG, so a training killed
    after an epoch and resumed reads the same images as one that never stopped."""
    space = FBNetV3Space()
    arch = space.decode(space.smallest_params()).arch
    data = _stream(folder, workers=1)
    recipe = Recipe(optimizer="sgd", lr=0.05, augment=0.2)
    kw = dict(seed=3, resolution=16, batch_size=16, schedule_epochs=3, bn_recalibration=16)
    whole = train(build_model(arch, 3, 1, seed=0), recipe, data, epochs=3, **kw)
    path = tmp_path / "ckpt.pt"
    train(build_model(arch, 3, 1, seed=0), recipe, data, epochs=1, checkpoint=path, **kw)
    resumed = train(build_model(arch, 3, 1, seed=0), recipe, data, epochs=3, checkpoint=path, **kw)
    assert resumed.resumed_epochs == 1
    assert resumed.val_acc == whole.val_acc and resumed.train_loss == whole.train_loss


def test_a_streaming_run_killed_mid_training_resumes(folder: Path, tmp_path: Path) -> None:
    """``jointnas run`` on a streamed folder, SIGKILLed during a training: the rerun fails the
    stale trial, trains that candidate again and finishes the budget."""
    storage = f"sqlite:///{tmp_path}/stream.db"
    args = (
        "--dataset",
        str(folder),
        "--data",
        "stream",
        "--loader-workers",
        "1",
        "--trials",
        "2",
        "--epochs",
        "3",
        "--stop-after",
        "coarse",
        "--batch-size",
        "16",
    )
    proc = start_run(tmp_path, storage, "s", *args)

    def mid_training(trials):
        return [
            t
            for t in trials
            if t.state == optuna.trial.TrialState.RUNNING and t.intermediate_values
        ]

    (killed,), _ = wait_for(storage, "s", proc, mid_training)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(4)  # past the heartbeat's grace period: the trial is stale
    again = start_run(tmp_path, storage, "s", *args)
    assert again.wait(timeout=300) == 0, (tmp_path / "s.out").read_text()[-2000:]
    trials = load_trials(storage, "s")
    assert len(trained(trials)) == 2
    assert trials[killed.number].state == optuna.trial.TrialState.FAIL
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retry) == 1 and retry[0].params == killed.params
    assert retry[0].state == optuna.trial.TrialState.COMPLETE
