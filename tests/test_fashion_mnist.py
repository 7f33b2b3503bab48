"""Fashion-MNIST: the real Debian files when installed, tiny synthetic idx files otherwise.

The real-data tests skip where ``dataset-fashion-mnist`` is not installed, except when
``JOINTNAS_REQUIRE_FASHION_MNIST`` is set (CI sets it: there they must really run).
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from helpers import run_cli

from jointnas.training import fashion_mnist
from jointnas.training.data import (
    BUILTIN_SOURCES,
    Dataset,
    DatasetError,
    load_dataset,
    load_fashion_mnist_test,
)
from jointnas.training.fashion_mnist import ENV_DIR

TRAIN_IMAGES, TRAIN_LABELS = fashion_mnist.FILES["train"]
TEST_IMAGES, TEST_LABELS = fashion_mnist.FILES["test"]


def _error(source: str, **kwargs: object) -> str:
    with pytest.raises(DatasetError) as info:
        load_dataset(source, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- the real files (Debian's dataset-fashion-mnist) -------------------------------------


@pytest.fixture(scope="module")
def real() -> None:
    directory = fashion_mnist.data_dir()
    if not (directory / TRAIN_IMAGES).is_file():
        why = f"Fashion-MNIST idx files not in {directory} (apt-get install dataset-fashion-mnist)"
        if os.environ.get("JOINTNAS_REQUIRE_FASHION_MNIST"):
            pytest.fail(f"{why}, but JOINTNAS_REQUIRE_FASHION_MNIST is set")
        pytest.skip(why)


@pytest.fixture(scope="module")
def fmnist10k(real: None) -> Dataset:
    return load_dataset("fashion-mnist:10000", seed=0)


def test_real_files_parse_to_60k_train_and_10k_test(real: None) -> None:
    for split, n in (("train", 60_000), ("test", 10_000)):
        x, y = fashion_mnist.raw(split)
        assert x.shape == (n, 1, 28, 28)
        assert x.dtype == y.dtype == np.uint8
        assert np.bincount(y).tolist() == [n // 10] * 10
        assert not x.flags.writeable and not y.flags.writeable
        assert fashion_mnist.raw(split)[0] is x  # parsed once per process
    assert len(fashion_mnist.CLASSES) == 10


def test_real_subset_is_stratified_split_and_normalised(fmnist10k: Dataset) -> None:
    data = fmnist10k
    assert data.name == "fashion-mnist:10000"
    assert (data.num_train, data.num_val, data.num_classes) == (8000, 2000, 10)
    assert data.x_train.shape == (8000, 1, 28, 28)
    assert data.x_train.dtype == torch.uint8
    assert data.augment.label == "crop-flip"  # clothes may be mirrored
    assert torch.bincount(data.y_train).tolist() == [800] * 10
    assert torch.bincount(data.y_val).tolist() == [200] * 10
    assert abs(_normalised(data).mean().item()) < 1e-4
    assert abs(_normalised(data).std().item() - 1.0) < 1e-3
    assert abs(_normalised(data, "val").mean().item()) < 0.1  # train statistics: only close


def test_real_subset_is_seeded(fmnist10k: Dataset) -> None:
    again = load_dataset("fashion-mnist:10000", seed=0)
    assert torch.equal(again.x_train, fmnist10k.x_train)
    assert torch.equal(again.y_val, fmnist10k.y_val)
    other = load_dataset("fashion-mnist:10000", seed=1)
    assert not torch.equal(other.x_train, fmnist10k.x_train)


def test_real_full_training_file_is_split_and_test_file_held_out(real: None) -> None:
    data = load_dataset("fashion-mnist", seed=0)
    assert data.name == "fashion-mnist"
    assert (data.num_train, data.num_val) == (48_000, 12_000)
    assert torch.bincount(data.y_val).tolist() == [1200] * 10
    assert load_dataset("fashion-mnist:60000", seed=0).name == "fashion-mnist"
    held = load_fashion_mnist_test("fashion-mnist:1000", seed=0)
    assert held.name == "fashion-mnist:1000+test"
    assert (held.num_train, held.num_val) == (800, 10_000)
    assert torch.bincount(held.y_val).tolist() == [1000] * 10
    assert torch.equal(held.x_train, load_dataset("fashion-mnist:1000", seed=0).x_train)
    assert abs(_normalised(held, "val").mean().item()) < 0.1


# --- tiny synthetic idx files ---------------------------------------------------------------


def _write_idx(path: Path, array: np.ndarray, magic: bytes | None = None, cut: int = 0) -> None:
    """`array` as a gzipped uint8 idx file; `magic` replaces the header's, `cut` drops bytes."""
    header = (magic or bytes((0, 0, 8, array.ndim))) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    with gzip.open(path, "wb") as f:
        f.write(payload[: len(payload) - cut])


def _synthetic(n: int = 40, classes: int = 4, size: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Image i is constant i (so its pixels identify it); label i % classes."""
    x = np.broadcast_to(np.arange(n)[:, None, None], (n, size, size)).astype(np.uint8)
    return x, np.arange(n) % classes


@pytest.fixture
def fake_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """40 training images (4 classes x 10) and their first 8 as the test file."""
    x, y = _synthetic()
    _write_idx(tmp_path / TRAIN_IMAGES, x)
    _write_idx(tmp_path / TRAIN_LABELS, y)
    _write_idx(tmp_path / TEST_IMAGES, x[:8])
    _write_idx(tmp_path / TEST_LABELS, y[:8])
    monkeypatch.setenv(ENV_DIR, str(tmp_path))
    return tmp_path


def _normalised(data: Dataset, split: str = "train") -> torch.Tensor:
    """A split as the trainer sees it unaugmented: float, normalised."""
    cpu = torch.device("cpu")
    if split == "train":
        return data.fit_images(torch.arange(data.num_train), device=cpu)
    return torch.cat([x for x, _ in data.val_batches(device=cpu)])


def _ids(data: Dataset) -> torch.Tensor:
    """Image ids (the constant pixel value) back from normalised images: their rank."""
    xs = torch.cat([data.x_train, data.x_val])[:, 0, 0, 0]
    return torch.argsort(torch.argsort(xs))


def test_builtin_sources_list_fashion_mnist() -> None:
    assert "fashion-mnist" in BUILTIN_SOURCES


def test_synthetic_files_parse_and_split(fake_dir: Path) -> None:
    x, y = fashion_mnist.raw("train")
    assert x.shape == (40, 1, 6, 6)
    assert np.array_equal(x[:, 0, 0, 0], np.arange(40))
    assert np.array_equal(y, np.arange(40) % 4)
    data = load_dataset("fashion-mnist", seed=3)
    assert data.name == "fashion-mnist"
    assert (data.num_train, data.num_val, data.num_classes, data.image_size) == (32, 8, 4, 6)
    assert torch.bincount(data.y_val).tolist() == [2] * 4
    assert torch.equal(torch.cat([data.y_train, data.y_val]), _ids(data) % 4)  # labels follow
    assert abs(_normalised(data).mean().item()) < 1e-5


def test_synthetic_subset_is_stratified_seeded_and_named(fake_dir: Path) -> None:
    data = load_dataset("fashion-mnist:020", seed=0)
    assert data.name == "fashion-mnist:20"
    assert torch.bincount(torch.cat([data.y_train, data.y_val])).tolist() == [5] * 4
    assert torch.bincount(data.y_val).tolist() == [1] * 4
    again = load_dataset("fashion-mnist:20", seed=0)
    assert torch.equal(again.x_train, data.x_train)
    assert torch.equal(again.y_val, data.y_val)
    drawn = [fashion_mnist.read_train("fashion-mnist:20", s)[1] for s in (0, 0, 1)]
    ids = [set(x[:, 0, 0, 0].tolist()) for x in drawn]
    assert ids[0] == ids[1] != ids[2]  # another seed draws other images
    assert load_dataset("fashion-mnist:40").name == "fashion-mnist"  # every image: the full set


def test_uneven_subset_gives_the_remainder_to_random_classes(fake_dir: Path) -> None:
    for seed in range(4):
        idx = fashion_mnist._stratified(np.arange(40) % 4, 22, seed)
        counts = np.bincount(np.arange(40)[idx] % 4)
        assert counts.sum() == 22 and sorted(counts.tolist()) == [5, 5, 6, 6]
        assert np.array_equal(idx, np.unique(idx))


def test_parsed_arrays_are_cached_read_only_until_a_file_changes(fake_dir: Path) -> None:
    x, _ = fashion_mnist.raw("train")
    assert fashion_mnist.raw("train")[0] is x
    assert not x.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        x[0, 0, 0, 0] = 1
    bigger, labels = _synthetic(n=48)
    _write_idx(fake_dir / TRAIN_IMAGES, bigger)
    _write_idx(fake_dir / TRAIN_LABELS, labels)
    assert len(fashion_mnist.raw("train")[0]) == 48


def test_held_out_test_file_is_normalised_like_the_training_split(fake_dir: Path) -> None:
    data = load_dataset("fashion-mnist:20", seed=1)
    held = load_fashion_mnist_test("fashion-mnist:20", seed=1)
    assert held.name == "fashion-mnist:20+test"
    assert torch.equal(held.x_train, data.x_train)
    assert held.x_val.shape == (8, 1, 6, 6)
    assert torch.equal(held.y_val, torch.arange(8) % 4)
    full = load_dataset("fashion-mnist", seed=1)
    # The test file holds training images 0..7: with the same statistics they match exactly.
    held_full = load_fashion_mnist_test("fashion-mnist", seed=1)
    order = torch.argsort(_ids(full))
    both = torch.cat([full.x_train, full.x_val])[order]
    assert torch.equal(held_full.x_val, both[:8])
    assert (held_full.mean, held_full.std) == (full.mean, full.std)
    resized = load_fashion_mnist_test("fashion-mnist", seed=1, image_size=12)
    assert resized.x_val.shape == (8, 1, 12, 12)
    with pytest.raises(DatasetError, match="not a fashion-mnist source: 'digits'"):
        load_fashion_mnist_test("digits")


def test_missing_test_file_is_one_line(fake_dir: Path) -> None:
    (fake_dir / TEST_LABELS).unlink()
    with pytest.raises(DatasetError, match=f"lacks {TEST_LABELS}") as info:
        load_fashion_mnist_test()
    assert "\n" not in str(info.value)


# --- error lines -----------------------------------------------------------------------------


def test_missing_directory_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_DIR, str(tmp_path / "nowhere"))
    assert _error("fashion-mnist:100") == (
        f"fashion-mnist: no idx files in {tmp_path / 'nowhere'} (install them with: "
        f"sudo apt-get install dataset-fashion-mnist, or set {ENV_DIR})"
    )


def test_default_directory_is_debians(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_DIR, raising=False)
    assert fashion_mnist.data_dir() == Path("/usr/share/datasets/fashion-mnist")
    monkeypatch.setenv(ENV_DIR, "")  # empty: unset
    assert fashion_mnist.data_dir() == Path("/usr/share/datasets/fashion-mnist")


def test_one_missing_file_is_named(fake_dir: Path) -> None:
    (fake_dir / TRAIN_LABELS).unlink()
    message = _error("fashion-mnist")
    assert f"{fake_dir} lacks {TRAIN_LABELS}" in message
    assert "apt-get install dataset-fashion-mnist" in message


@pytest.mark.parametrize(
    ("name", "magic", "message"),
    [
        (TRAIN_IMAGES, bytes((0, 0, 8, 2)), "is not a uint8 idx3 file: magic 00000802"),
        (TRAIN_LABELS, bytes((0, 0, 8, 3)), "is not a uint8 idx1 file: magic 00000803"),
        (TRAIN_IMAGES, bytes((0, 0, 0x0D, 3)), "magic 00000d03, expected 00000803"),
        (TRAIN_LABELS, b"\x1f\x8b\x08\x01", "magic 1f8b0801, expected 00000801"),
    ],
)
def test_bad_magic_is_one_line(fake_dir: Path, name: str, magic: bytes, message: str) -> None:
    x, y = _synthetic()
    _write_idx(fake_dir / name, x if name == TRAIN_IMAGES else y, magic=magic)
    got = _error("fashion-mnist")
    assert message in got and str(fake_dir / name) in got


def test_truncated_payload_is_one_line(fake_dir: Path) -> None:
    _write_idx(fake_dir / TRAIN_IMAGES, _synthetic()[0], cut=100)
    assert "is truncated or corrupt: its header promises 40x6x6 = 1440 bytes, but 1340 follow" in (
        _error("fashion-mnist")
    )


def test_truncated_header_is_one_line(fake_dir: Path) -> None:
    _write_idx(fake_dir / TRAIN_LABELS, _synthetic()[1], cut=42)  # 8-byte header + 40 labels
    assert "is truncated: 6 bytes, no full header" in _error("fashion-mnist")


def test_truncated_gzip_stream_is_one_line(fake_dir: Path) -> None:
    blob = (fake_dir / TRAIN_IMAGES).read_bytes()
    (fake_dir / TRAIN_IMAGES).write_bytes(blob[: len(blob) // 2])
    assert "EOFError" in _error("fashion-mnist")


def test_file_that_is_not_gzip_is_one_line(fake_dir: Path) -> None:
    (fake_dir / TRAIN_LABELS).write_bytes(b"plain text, not gzip")
    message = _error("fashion-mnist")
    assert f"cannot read {fake_dir / TRAIN_LABELS}: BadGzipFile" in message


def test_image_and_label_counts_must_agree(fake_dir: Path) -> None:
    _write_idx(fake_dir / TRAIN_LABELS, _synthetic()[1][:39])
    assert "has 40 images but" in _error("fashion-mnist")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("fashion-mnist:abc", "got 'abc'"),
        ("fashion-mnist:0", "got '0'"),
        ("fashion-mnist:", "got ''"),
        ("fashion-mnist:-5", "got '-5'"),
        ("fashion-mnist:1e4", "got '1e4'"),
        ("fashion-mnist:60001", "asks for 60001 images, but the fashion-mnist training file has"),
    ],
)
def test_bad_subset_size_is_one_line(
    source: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_DIR, str(tmp_path))  # checked before any file is looked for
    got = _error(source)
    assert got.startswith(f"dataset {source!r}: ") and message in got
    if "got" in message:
        assert "must be a whole number of images from 1 to 60000" in got


def test_subset_larger_than_the_files(fake_dir: Path) -> None:
    assert "asks for 41 images, but fashion-mnist has 40" in _error("fashion-mnist:41")


def test_subset_too_small_to_split(fake_dir: Path) -> None:
    assert "a stratified split needs at least 2 per class" in _error("fashion-mnist:3")


def test_unknown_source_mentions_the_subset_form() -> None:
    assert "fashion-mnist[:N]" in _error("fashion")


# --- the command line ------------------------------------------------------------------------


def test_cli_without_the_files_is_one_line_and_stores_no_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(ENV_DIR, str(empty))
    url = f"sqlite:///{tmp_path}/x.db"
    done = run_cli(
        "run",
        "--dataset",
        "fashion-mnist:100",
        "--trials",
        "1",
        "--epochs",
        "1",
        "--storage",
        url,
        "--stop-after",
        "coarse",
        "--no-progress",
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("jointnas: error: fashion-mnist: no idx files in")
    assert "apt-get install dataset-fashion-mnist" in lines[0]
    if (tmp_path / "x.db").exists():
        assert optuna.study.get_all_study_names(storage=url) == []
