"""Train-time augmentation on batches: the base policies and the searched RandAugment strength."""

from __future__ import annotations

import pytest
import torch

from jointnas.errors import DatasetError
from jointnas.training import augment as aug


def _images(n: int = 6, c: int = 1, size: int = 16) -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(0))


def _shift_of(out: torch.Tensor, ref: torch.Tensor, pad: int) -> tuple[int, int] | None:
    """The whole-pixel (dx, dy) that maps ``ref`` onto ``out`` (zeros shifted in), if any."""
    size = ref.shape[-1]
    for dy in range(-pad, pad + 1):
        for dx in range(-pad, pad + 1):
            moved = torch.zeros_like(ref)
            src = ref[..., max(0, dy) : size + min(0, dy), max(0, dx) : size + min(0, dx)]
            moved[..., max(0, -dy) : size + min(0, -dy), max(0, -dx) : size + min(0, -dx)] = src
            if torch.allclose(out, moved, atol=1e-5):
                return dx, dy
    return None


def test_shift_crop_moves_whole_pixels_and_fills_zeros() -> None:
    x = _images()
    torch.manual_seed(0)
    out = aug.crop_flip(x, 16, aug.POLICIES["crop"])
    shifts = [_shift_of(out[i], x[i], pad=2) for i in range(len(x))]
    assert None not in shifts  # pad = 0.125 * 16 = 2 px
    assert len(set(shifts)) > 1  # drawn per image


def test_shift_crop_resizes_first_so_shifts_are_in_output_pixels() -> None:
    x = _images(size=28)
    torch.manual_seed(1)
    out = aug.crop_flip(x, 16, aug.POLICIES["crop"])
    ref = aug.resize(x, 16)
    assert out.shape == (6, 1, 16, 16)
    assert all(_shift_of(out[i], ref[i], pad=2) is not None for i in range(6))


def test_flip_mirrors_about_half_of_the_images() -> None:
    x = _images(n=400, size=8)
    torch.manual_seed(0)
    out = aug.crop_flip(x, 8, aug.Augment(crop="none", flip=True))
    flipped = [torch.allclose(o, i.flip(-1), atol=1e-6) for o, i in zip(out, x, strict=True)]
    kept = [torch.allclose(o, i, atol=1e-6) for o, i in zip(out, x, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 150 < sum(flipped) < 250


def test_random_resized_crop_has_the_resolution_and_varies() -> None:
    x = _images(n=8, c=3, size=64)
    torch.manual_seed(0)
    out = aug.crop_flip(x, 24, aug.POLICIES["rrc-flip"])
    assert out.shape == (8, 3, 24, 24)
    assert not torch.allclose(out[0], aug.resize(x[:1], 24)[0])


def test_same_seed_same_batch() -> None:
    x = _images(n=16, c=3, size=16)
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        outs.append(aug.train_view(x, resolution=16, policy=aug.POLICIES["rrc-flip"], strength=0.5))
    assert torch.equal(*outs)


@pytest.mark.parametrize("channels", [1, 3])
def test_randaugment_strength_zero_is_off_and_positive_changes_images(channels: int) -> None:
    x = _images(n=16, c=channels, size=16)
    assert aug.randaugment(x, 0.0) is x
    torch.manual_seed(0)
    out = aug.randaugment(x, 0.8)
    assert out.shape == x.shape
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert not torch.allclose(out, x)


def test_randaugment_leaves_non_finite_batches_for_the_loss_to_report() -> None:
    x = torch.full((4, 1, 8, 8), float("nan"))
    assert aug.randaugment(x, 0.5) is x


def test_default_policies_by_source_kind() -> None:
    assert aug.parse_augment("auto", kind="folder").label == "rrc-flip"
    assert aug.parse_augment("auto", kind="objects").label == "crop-flip"
    assert aug.parse_augment("auto", kind="digits").label == "none"  # a mirrored 2 is no 2
    assert aug.parse_augment("auto", kind="arrays").label == "crop"
    assert {aug.parse_augment(n, kind="digits").label for n in aug.POLICIES} == set(aug.POLICIES)
    with pytest.raises(DatasetError, match="unknown augmentation 'wild'"):
        aug.parse_augment("wild", kind="folder")
    with pytest.raises(DatasetError, match="augmentation crop 'x' is not one of"):
        aug.Augment(crop="x")
