"""GumbelPalette: hard outputs are exactly palette colours, gradients reach logits and colours."""

from __future__ import annotations

import pytest
import torch

from models.ukiyoe.nets.palette import GumbelPalette
from models.ukiyoe.schema import PIGMENTS
from training.toolkit.errors import UserError


def logits_batch(seed: int = 0, colors: int = 8) -> torch.Tensor:
    return torch.randn(4, colors, 6, 6, generator=torch.Generator().manual_seed(seed)) * 2


def matches_a_palette_colour(image: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """(B, H, W) bools: the pixel equals some row of the palette in all three channels, bit for bit."""
    pixels = image.permute(0, 2, 3, 1)[..., None, :]  # (B, H, W, 1, 3)
    return (pixels == palette).all(dim=-1).any(dim=-1)


def test_colours_start_at_the_named_pigments_inside_minus_one_one() -> None:
    palette = GumbelPalette(3, init=["sumi", "paper", "vermilion"])
    expected = torch.tensor([PIGMENTS[n] for n in ["sumi", "paper", "vermilion"]], dtype=torch.float32)
    assert torch.allclose(palette.colors(), expected / 127.5 - 1, atol=1e-5)
    default = GumbelPalette(8).colors()
    first = torch.tensor(list(PIGMENTS.values())[:8], dtype=torch.float32) / 127.5 - 1
    assert torch.allclose(default, first, atol=1e-3)
    with torch.no_grad():
        palette.raw_colors.mul_(1000)  # however far training pushes them, colours stay in range
    assert palette.colors().abs().max() <= 1


def test_every_hard_pixel_is_exactly_a_palette_colour_in_train_and_eval() -> None:
    palette = GumbelPalette(8)
    for mode in (True, False):
        palette.train(mode)
        image, weights = palette(logits_batch())
        assert image.shape == (4, 3, 6, 6)
        assert matches_a_palette_colour(image, palette.colors()).all()
        assert torch.equal(weights.sum(dim=1), torch.ones(4, 6, 6))
        assert set(weights.unique().tolist()) == {0.0, 1.0}


def test_straight_through_gradients_reach_logits_and_colours() -> None:
    palette = GumbelPalette(8).train()
    logits = logits_batch().requires_grad_()
    image, _ = palette(logits)
    (image * torch.randn_like(image)).sum().backward()
    for grad in (logits.grad, palette.raw_colors.grad):
        assert torch.isfinite(grad).all()
        assert grad.abs().sum() > 0


def test_lower_temperature_gives_weights_closer_to_one_hot() -> None:
    palette = GumbelPalette(8).train()

    def mean_entropy(temperature: float) -> float:
        palette.temperature.fill_(temperature)
        torch.manual_seed(0)
        _, soft = palette(logits_batch(), hard=False)
        return -(soft * soft.clamp_min(1e-12).log()).sum(dim=1).mean().item()

    entropies = [mean_entropy(t) for t in (4.0, 2.0, 0.5, 0.1)]
    assert entropies == sorted(entropies, reverse=True)
    assert entropies[-1] < 0.1 < 1.0 < entropies[0]


def test_temperature_is_a_checkpointed_buffer_set_in_place() -> None:
    palette = GumbelPalette(4, temperature=2.0)
    assert "temperature" in palette.state_dict()
    assert "temperature" not in dict(palette.named_parameters())
    palette.temperature.fill_(0.7)
    restored = GumbelPalette(4)
    restored.load_state_dict(palette.state_dict())
    assert restored.temperature.item() == pytest.approx(0.7)


def test_argmax_image_is_deterministic_and_follows_the_largest_logit() -> None:
    palette = GumbelPalette(8).train()
    logits = logits_batch()
    first, second = palette.argmax_image(logits), palette.argmax_image(logits)
    assert torch.equal(first, second)
    assert torch.equal(first, palette.colors()[logits.argmax(dim=1)].permute(0, 3, 1, 2))


def test_palette_config_errors_name_the_fix() -> None:
    with pytest.raises(UserError, match="unknown pigments"):
        GumbelPalette(2, init=["sumi", "gold_leaf"])
    with pytest.raises(UserError, match="num_colors=3"):
        GumbelPalette(3, init=["sumi", "paper"])
