"""Tests for jointnas.training.data: every source, the split, resizing, and each error message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from jointnas.training.data import Dataset, DatasetError, load_dataset


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    return load_dataset()


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def _write_png(path: Path, value: int, mode: str = "L", size: tuple[int, int] = (12, 10)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    color = value if mode == "L" else (value, 255 - value, value // 2)
    Image.new(mode, size, color).save(path)


def _error(source: Path | str, **kwargs: object) -> str:
    with pytest.raises(DatasetError) as info:
        load_dataset(str(source), **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_mnist5k_loads_offline_with_stratified_normalised_split(mnist: Dataset) -> None:
    assert mnist.name == "mnist5k"
    assert (mnist.num_train, mnist.num_val) == (4000, 1000)
    assert mnist.num_classes == 10
    assert mnist.in_channels == 1
    assert mnist.image_size == 28
    assert mnist.x_train.shape == (4000, 1, 28, 28)
    assert mnist.x_val.shape == (1000, 1, 28, 28)
    assert mnist.x_train.dtype == torch.uint8  # held compact; normalised per batch
    assert mnist.y_train.dtype == torch.int64
    # 500 images per class in the source, so a stratified 20% split has exactly 100 each.
    assert torch.bincount(mnist.y_val).tolist() == [100] * 10
    assert torch.bincount(mnist.y_train).tolist() == [400] * 10
    cpu = torch.device("cpu")
    train = mnist.fit_images(torch.arange(mnist.num_train), device=cpu)
    assert abs(train.mean().item()) < 1e-4
    assert abs(train.std().item() - 1.0) < 1e-3
    val = torch.cat([x for x, _ in mnist.val_batches(device=cpu)])
    assert val.shape == (1000, 1, 28, 28)
    assert abs(val.mean().item()) < 0.1  # val uses train stats, so only close to 0
    assert mnist.augment.label == "none"  # digits: no flip, and shifts cost 2-epoch runs


def test_same_seed_same_split_and_different_seed_differs(mnist: Dataset) -> None:
    again = load_dataset(seed=0)
    assert torch.equal(again.x_train, mnist.x_train)
    assert torch.equal(again.y_val, mnist.y_val)
    other = load_dataset(seed=1)
    assert not torch.equal(other.y_train, mnist.y_train)
    assert not torch.equal(other.x_val, mnist.x_val)


def test_digits_loads(digits: Dataset) -> None:
    assert digits.num_train + digits.num_val == 1797
    assert digits.num_classes == 10
    assert digits.x_train.shape[1:] == (1, 8, 8)
    assert set(digits.y_val.tolist()) == set(range(10))


def test_image_size_resizes_builtin_sources() -> None:
    data = load_dataset("digits", image_size=16)
    assert data.x_train.shape[1:] == (1, 16, 16)
    assert data.image_size == 16


def test_max_images_per_class_caps_each_class_with_seed() -> None:
    data = load_dataset("digits", max_images_per_class=20, val_fraction=0.25)
    labels = torch.cat([data.y_train, data.y_val])
    assert torch.bincount(labels).tolist() == [20] * 10
    assert torch.bincount(data.y_val).tolist() == [5] * 10
    again = load_dataset("digits", max_images_per_class=20, val_fraction=0.25)
    assert torch.equal(again.x_train, data.x_train)


@pytest.mark.parametrize("layout", ["NHW", "NHWC", "NCHW"])
def test_npz_round_trip(tmp_path: Path, layout: str) -> None:
    # Image i is constant i + 60*c in channel c, so its rank identifies it after normalising.
    n, h = 60, 7
    ids = np.arange(n)
    raw_labels = np.array([9, 5, 7])[ids % 3]  # arbitrary ints, remapped to sorted 0..2
    channels = 1 if layout == "NHW" else 3
    per_channel = ids[:, None] + 60 * np.arange(channels)[None, :]  # (N, C)
    x = np.broadcast_to(per_channel[:, :, None, None], (n, channels, h, h)).astype(np.uint8)
    if layout == "NHW":
        x = x[:, 0]
    elif layout == "NHWC":
        x = x.transpose(0, 2, 3, 1)
    np.savez(tmp_path / "toy.npz", x=x, y=raw_labels)

    data = load_dataset(str(tmp_path / "toy.npz"), val_fraction=0.25)
    assert data.name == "toy"
    assert data.num_classes == 3
    assert (data.in_channels, data.image_size) == (channels, h)
    assert (data.num_train, data.num_val) == (45, 15)
    xs = torch.cat([data.x_train, data.x_val])
    ys = torch.cat([data.y_train, data.y_val])
    assert torch.allclose(xs, xs[:, :, :1, :1].expand_as(xs))  # layout kept: images constant
    recovered = torch.argsort(torch.argsort(xs[:, 0, 0, 0]))  # rank == original image id
    for c in range(channels):
        assert torch.equal(torch.argsort(torch.argsort(xs[:, c, 0, 0])), recovered)
    expected = np.searchsorted([5, 7, 9], raw_labels[recovered.numpy()])
    assert torch.equal(ys, torch.from_numpy(expected))


def test_image_folder_grayscale(tmp_path: Path) -> None:
    for i in range(4):
        _write_png(tmp_path / "cat" / f"{i}.png", value=10 + i)
        _write_png(tmp_path / "dog" / f"{i}.PNG", value=200 + i)
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    (tmp_path / "dog" / ".hidden.png").write_bytes(b"garbage that must be ignored")
    (tmp_path / ".cache").mkdir()  # hidden directory is not a class

    data = load_dataset(str(tmp_path), val_fraction=0.5, image_size=16)
    assert data.num_classes == 2
    assert data.in_channels == 1
    assert data.image_size == 16
    assert (data.num_train, data.num_val) == (4, 4)
    # Class 0 ("cat", sorted first) is dark, class 1 ("dog") is bright.
    means = data.x_train.float().mean(dim=(1, 2, 3))
    assert (means[data.y_train == 0] < means[data.y_train == 1].min()).all()


def test_image_folder_rgb_when_any_image_is_colour(tmp_path: Path) -> None:
    for i in range(3):
        _write_png(tmp_path / "a" / f"{i}.png", value=20 * i, mode="L")
        _write_png(tmp_path / "b" / f"{i}.jpg", value=100 + 20 * i, mode="RGB")
    data = load_dataset(str(tmp_path), val_fraction=1 / 3)
    assert data.in_channels == 3
    assert data.image_size == 32
    assert data.num_train + data.num_val == 6
    xs = torch.cat([data.x_train, data.x_val]).float().mean(dim=(2, 3))  # (N, 3) means
    ys = torch.cat([data.y_train, data.y_val])
    # Grayscale "a" is promoted to R=G=B (rising together); colour "b" has G = 255 - R.
    corr = [torch.corrcoef(xs[ys == k][:, :2].T)[0, 1].item() for k in (0, 1)]
    assert corr[0] > 0.99
    assert corr[1] < -0.99


def test_at_resolution_resizes_and_caches(digits: Dataset) -> None:
    big = digits.at_resolution(16)
    assert big.x_train.shape == (digits.num_train, 1, 16, 16)
    assert big.x_val.shape == (digits.num_val, 1, 16, 16)
    assert torch.equal(big.y_train, digits.y_train)
    assert big.num_classes == 10
    assert digits.at_resolution(16) is big
    assert digits.at_resolution(8) is digits
    with pytest.raises(DatasetError, match="resolution must be a positive integer"):
        digits.at_resolution(0)


def test_subset_takes_first_examples(digits: Dataset) -> None:
    small = digits.subset(train=10, val=5)
    assert (small.num_train, small.num_val, small.num_classes) == (10, 5, 10)
    assert torch.equal(small.x_train, digits.x_train[:10])
    assert torch.equal(small.y_val, digits.y_val[:5])
    assert digits.subset(val=3).num_train == digits.num_train


def test_unknown_source_lists_builtins() -> None:
    message = _error("cifar-nope")
    assert "unknown dataset source 'cifar-nope'" in message
    assert "mnist5k" in message
    assert "digits" in message


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.npz"
    assert f"dataset path does not exist: {missing}" in _error(missing)


def test_unsupported_file(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("1,2,3")
    assert "unsupported dataset file" in _error(tmp_path / "data.csv")


def test_directory_without_class_subdirectories(tmp_path: Path) -> None:
    _write_png(tmp_path / "loose.png", value=0)
    assert f"no class subdirectories in {tmp_path}" in _error(tmp_path)


def test_directory_without_images(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "readme.txt").write_text("hi")
    assert "no images" in _error(tmp_path)


def test_class_directory_without_images(tmp_path: Path) -> None:
    for i in range(2):
        _write_png(tmp_path / "a" / f"{i}.png", value=0)
    (tmp_path / "b").mkdir()
    message = _error(tmp_path)
    assert "['b']" in message
    assert "contain no images" in message


def test_unreadable_files_are_skipped_with_one_counted_warning(tmp_path: Path) -> None:
    for i in range(2):
        _write_png(tmp_path / "a" / f"{i}.png", value=0)
        _write_png(tmp_path / "b" / f"{i}.png", value=255)
    (tmp_path / "b" / "x.png").write_bytes(b"\x00\x01garbage, not a png")
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "b" / "whole.png")
    whole = (tmp_path / "b" / "whole.png").read_bytes()
    (tmp_path / "b" / "whole.png").unlink()
    (tmp_path / "b" / "cut.png").write_bytes(whole[: len(whole) // 2])  # a header, half the pixels
    with pytest.warns(UserWarning) as caught:
        data = load_dataset(str(tmp_path), val_fraction=0.5)
    text = " | ".join(str(w.message) for w in caught)
    assert "skipped 1 file(s) that are not readable images (b/x.png)" in text
    assert "skipped 1 image(s) that failed to decode" in text
    assert data.num_train + data.num_val == 4


def test_mixed_grey_and_colour_warns_with_counts(tmp_path: Path) -> None:
    for i in range(2):
        _write_png(tmp_path / "a" / f"{i}.png", value=20, mode="L")
        _write_png(tmp_path / "b" / f"{i}.png", value=90, mode="RGB")
    _write_png(tmp_path / "b" / "2.png", value=90, mode="RGB")
    with pytest.warns(UserWarning, match="2 grey and 3 colour images"):
        assert load_dataset(str(tmp_path), val_fraction=0.5).in_channels == 3


def test_stored_size_above_the_images_warns(tmp_path: Path) -> None:
    for i in range(2):
        _write_png(tmp_path / "a" / f"{i}.png", value=20)
        _write_png(tmp_path / "b" / f"{i}.png", value=90)
    with pytest.warns(UserWarning, match="stored size 64 px exceeds the smallest image"):
        assert load_dataset(str(tmp_path), val_fraction=0.5, image_size=64).image_size == 64


def test_decoded_folder_is_cached_and_reused(tmp_path: Path, monkeypatch) -> None:
    for i in range(3):
        _write_png(tmp_path / "d" / "a" / f"{i}.png", value=10 * i)
        _write_png(tmp_path / "d" / "b" / f"{i}.png", value=200 - i)
    monkeypatch.setenv("JOINTNAS_CACHE_DIR", str(tmp_path / "cache"))
    first = load_dataset(str(tmp_path / "d"), val_fraction=0.5, image_size=8)
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(cached) == 2 and cached[0].endswith(".x.npy")
    (tmp_path / "d" / "a" / "0.png").rename(tmp_path / "d" / "a" / "9.png")  # a changed folder
    again = load_dataset(str(tmp_path / "d"), val_fraction=0.5, image_size=8)
    assert len(list((tmp_path / "cache").iterdir())) == 4  # a new key, the old entry kept

    def pixels(d: Dataset) -> torch.Tensor:
        return torch.sort(torch.cat([d.x_train, d.x_val]).flatten())[0]

    assert torch.equal(pixels(first), pixels(again))


def test_npz_that_is_not_a_zip_archive(tmp_path: Path) -> None:
    (tmp_path / "d.npz").write_bytes(b"definitely not a zip archive")
    assert f"cannot read {tmp_path / 'd.npz'}: not an .npz (zip) archive" in _error(
        tmp_path / "d.npz"
    )


def test_npz_missing_array(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 5, 5)))
    message = _error(tmp_path / "d.npz")
    assert "lacks array(s) ['y']" in message
    assert "d.npz" in message


def test_npz_mismatched_lengths(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 5, 5)), y=np.array([0, 1, 0]))
    assert "x has 4 images but y 3" in _error(tmp_path / "d.npz")


@pytest.mark.parametrize("shape", [(4, 25), (4, 5, 5, 5), (4, 2, 5, 5, 1)])
def test_npz_wrong_x_shape(tmp_path: Path, shape: tuple[int, ...]) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros(shape), y=np.array([0, 1, 0, 1]))
    assert "x must be (N,H,W), (N,H,W,C) or (N,C,H,W)" in _error(tmp_path / "d.npz")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_npz_with_non_finite_pixels(tmp_path: Path, bad: float) -> None:
    x = np.zeros((4, 5, 5), dtype=np.float32)
    x[1, 2, 3] = bad
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, 0, 1]))
    assert "x has 1 NaN or infinite value(s)" in _error(tmp_path / "d.npz")


def test_npz_non_integer_labels(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 5, 5)), y=np.array([0.0, 1.0, 0.0, 1.0]))
    assert "y must be 1-D integer labels" in _error(tmp_path / "d.npz")


def test_npz_object_array_is_refused_without_pickle(tmp_path: Path) -> None:
    x = np.empty(4, dtype=object)
    x[:] = [np.zeros((5, 5))] * 4
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, 0, 1]))
    message = _error(tmp_path / "d.npz")
    assert "object arrays" in message
    assert "allow_pickle=False" in message


def test_single_class(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 5, 5)), y=np.full(4, 7))
    assert "dataset 'd' needs at least 2 classes, found 1: [7]" in _error(tmp_path / "d.npz")


def test_single_class_image_folder_names_the_class(tmp_path: Path) -> None:
    for i in range(3):
        _write_png(tmp_path / "only" / f"{i}.png", value=i)
    assert "needs at least 2 classes, found 1: ['only']" in _error(tmp_path)


def test_class_too_small_to_stratify(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((5, 5, 5)), y=np.array([0, 0, 0, 0, 3]))
    message = _error(tmp_path / "d.npz")
    assert "class 3 has 1 image(s)" in message
    assert "at least 2 per class" in message


def test_cap_below_two_per_class_cannot_stratify() -> None:
    assert "at least 2 per class" in _error("digits", max_images_per_class=1)


def test_val_split_smaller_than_class_count() -> None:
    message = _error("digits", val_fraction=0.001)
    assert "cannot split dataset 'digits' with val_fraction=0.001" in message


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, 1.5])
def test_val_fraction_out_of_range(fraction: float) -> None:
    assert f"val_fraction must be in (0, 1), got {fraction}" in _error(
        "digits", val_fraction=fraction
    )


def test_repr_shows_shapes_not_pixels(digits: Dataset) -> None:
    text = repr(digits.subset(train=3, val=2))
    assert text == (
        "Dataset(name='digits', train=(3, 1, 8, 8), val=(2, 1, 8, 8), num_classes=10, "
        "augment='none')"
    )


def test_dataset_rejects_mismatched_tensors() -> None:
    with pytest.raises(DatasetError, match=r"bad: need \(N, C, H, W\) / \(N,\) splits"):
        Dataset(
            "bad",
            torch.zeros(4, 1, 5, 5),
            torch.zeros(3),
            torch.zeros(2, 1, 5, 5),
            torch.zeros(2),
            2,
        )


def test_dataset_error_is_value_error() -> None:
    assert issubclass(DatasetError, ValueError)
    assert str(DatasetError("two\nlines")) == "two lines"
