"""DiffAugment: per-sample differentiable colour, translation and cutout with a device-side probability."""

from __future__ import annotations

import pytest
import torch

from models.ukiyoe.augment import DiffAugment, cut_out, translate
from training.toolkit.errors import UserError


def images(batch: int = 8, size: int = 16) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1


@pytest.mark.parametrize("probability", [0.0, torch.tensor(0.0)])
def test_probability_zero_returns_the_input_exactly(probability: float | torch.Tensor) -> None:
    x = images()
    assert torch.equal(DiffAugment()(x, probability), x)


@pytest.mark.parametrize("probability", [1.0, torch.tensor(1.0)])
def test_probability_one_changes_every_sample(probability: float | torch.Tensor) -> None:
    torch.manual_seed(0)
    x = images()
    out = DiffAugment()(x, probability)
    assert out.shape == x.shape
    assert ((out - x).abs().flatten(1).amax(dim=1) > 1e-3).all()


def test_each_sample_is_augmented_with_the_given_probability() -> None:
    torch.manual_seed(0)
    x = images(batch=2000, size=4)
    out = DiffAugment(policy=("color",))(x, torch.tensor(0.3))
    changed = (out != x).flatten(1).any(dim=1).float().mean().item()
    assert changed == pytest.approx(0.3, abs=0.04)


def test_gradients_flow_to_the_images() -> None:
    torch.manual_seed(0)
    x = images().requires_grad_()
    DiffAugment()(x, 1.0).square().sum().backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad.flatten(1).abs().sum(dim=1) > 0).all()


def test_translation_shifts_by_whole_pixels_within_the_ratio_and_pads_with_zero() -> None:
    torch.manual_seed(0)
    x = torch.arange(1.0, 17.0).reshape(1, 1, 4, 4).expand(64, 1, 4, 4)
    out = translate(x, ratio=0.25)  # up to 1 pixel each way
    for sample in out:
        nonzero = sample[sample != 0]
        # Each kept value comes from the original image; the shifted-in border is 0.
        assert set(nonzero.tolist()) <= set(range(1, 17))
        assert (sample != 0).sum() in (16, 12, 9)
    assert (out != x).flatten(1).any(dim=1).any()


def test_cutout_zeroes_a_square_of_the_ratio_at_most() -> None:
    torch.manual_seed(0)
    x = torch.ones(64, 3, 8, 8)
    out = cut_out(x, ratio=0.5)
    zeroed = (out == 0).all(dim=1).flatten(1).sum(dim=1)
    assert (zeroed <= 16).all() and (zeroed > 0).all() and (zeroed == 16).any()
    assert set(out.unique().tolist()) <= {0.0, 1.0}


def test_magnitudes_come_from_the_constructor() -> None:
    torch.manual_seed(0)
    x = torch.ones(32, 3, 8, 8)
    out = DiffAugment(policy=("cutout",), cutout=0.25)(x, 1.0)
    assert ((out == 0).all(dim=1).flatten(1).sum(dim=1) <= 4).all()
    assert torch.equal(DiffAugment(policy=("translation",), translation=0.0)(x, 1.0), x)


def test_unknown_policy_is_a_user_error_naming_the_choices() -> None:
    with pytest.raises(UserError, match="color"):
        DiffAugment(policy=("colour",))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_runs_on_the_images_device() -> None:
    x = images().cuda()
    assert DiffAugment()(x, torch.tensor(0.5, device="cuda")).device == x.device
