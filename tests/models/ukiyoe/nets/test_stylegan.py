"""StyleGAN2-style generator: modulation/demodulation arithmetic, noise, mapping and output shapes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.ukiyoe.nets.stylegan import (
    MappingNetwork,
    ModulatedConv2d,
    NoiseInjection,
    StyleGenerator,
    StyleSynthesis,
)


def unit_styles(conv: ModulatedConv2d) -> ModulatedConv2d:
    """Make the affine layer output all-ones styles for any w."""
    with torch.no_grad():
        conv.affine.weight.zero_()
        conv.affine.bias.fill_(1.0)
        conv.bias.normal_()
    return conv


def test_all_ones_style_without_demodulation_is_a_plain_convolution() -> None:
    torch.manual_seed(0)
    conv = unit_styles(ModulatedConv2d(5, 7, 3, w_dim=8, demodulate=False))
    x, w = torch.randn(3, 5, 9, 9), torch.randn(3, 8)
    expected = F.conv2d(x, conv.weight * conv.weight_gain, conv.bias, padding=1)
    assert torch.allclose(conv(x, w), expected, atol=1e-5)


def test_all_ones_style_with_demodulation_is_a_conv_with_unit_norm_filters() -> None:
    torch.manual_seed(0)
    conv = unit_styles(ModulatedConv2d(5, 7, 3, w_dim=8))
    x, w = torch.randn(3, 5, 9, 9), torch.randn(3, 8)
    weight = conv.weight / conv.weight.square().sum(dim=(1, 2, 3), keepdim=True).sqrt()
    assert torch.allclose(conv(x, w), F.conv2d(x, weight, conv.bias, padding=1), atol=1e-5)


def test_each_sample_is_convolved_with_its_own_style() -> None:
    torch.manual_seed(0)
    conv = ModulatedConv2d(4, 6, 3, w_dim=8)
    x, w = torch.randn(3, 4, 8, 8), torch.randn(3, 8)
    batched = conv(x, w)
    one_by_one = torch.cat([conv(x[i : i + 1], w[i : i + 1]) for i in range(3)])
    assert torch.allclose(batched, one_by_one, atol=1e-5)


def test_demodulation_gives_unit_output_std_per_channel_for_unit_variance_input() -> None:
    torch.manual_seed(0)
    conv = ModulatedConv2d(32, 16, 3, w_dim=8)
    with torch.no_grad():
        conv.affine.weight.mul_(3.0)  # styles far from 1: demodulation must still normalise
    x, w = torch.randn(4, 32, 40, 40), torch.randn(4, 8)
    with torch.no_grad():
        interior = conv(x, w)[:, :, 1:-1, 1:-1]  # the zero-padded border has fewer terms
    std = interior.std(dim=(2, 3))  # per sample and channel
    assert torch.allclose(std, torch.ones_like(std), atol=0.1)


def test_upsampling_doubles_the_resolution() -> None:
    conv = ModulatedConv2d(4, 6, 3, w_dim=8, upsample=True)
    assert conv(torch.randn(2, 4, 5, 5), torch.randn(2, 8)).shape == (2, 6, 10, 10)


def test_noise_strength_starts_at_zero_and_scales_per_channel() -> None:
    inject = NoiseInjection(3)
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(inject(x), x)
    with torch.no_grad():
        inject.strength.copy_(torch.tensor([0.0, 1.0, 2.0]))
    noise = torch.randn(2, 1, 4, 4)
    out = inject(x, noise)
    assert torch.equal(out[:, 0], x[:, 0])
    assert torch.allclose(out[:, 2] - x[:, 2], 2 * noise[:, 0])


def test_mapping_is_invariant_to_the_scale_of_z_by_pixel_norm() -> None:
    torch.manual_seed(0)
    mapping = MappingNetwork(16, 24, num_layers=3)
    z = torch.randn(5, 16)
    assert mapping(z).shape == (5, 24)
    assert torch.allclose(mapping(z), mapping(7 * z), atol=1e-5)


def test_lr_multiplier_scales_the_stored_weights_not_the_function() -> None:
    torch.manual_seed(0)
    slow = MappingNetwork(8, 8, num_layers=1, lr_multiplier=0.01)
    layer = slow.layers[0]
    # Stored weights are N(0, 1) / lr_mul; the effective weights are N(0, 1) / sqrt(fan_in) again.
    assert layer.weight.std().item() == pytest.approx(100, rel=0.3)
    assert (layer.weight * layer.weight_gain).std().item() == pytest.approx(8**-0.5, rel=0.3)


def test_generator_returns_state_and_style_at_the_resolution() -> None:
    torch.manual_seed(0)
    generator = StyleGenerator(z_dim=16, w_dim=24, mapping_layers=2, resolution=16, state_channels=5)
    assert generator.z_dim == 16
    z = torch.randn(3, 16, requires_grad=True)
    state, w = generator(z)
    assert state.shape == (3, 5, 16, 16) and w.shape == (3, 24)
    assert torch.isfinite(state).all() and state.std() > 0.05
    state.square().mean().backward()
    assert all(p.grad is not None for p in generator.parameters())
    assert z.grad.abs().sum() > 0


def test_synthesis_widths_follow_channels_and_resolution_must_be_a_power_of_two_step() -> None:
    synthesis = StyleSynthesis(8, resolution=32, state_channels=4, channels=(16, 8))
    assert synthesis.constant.shape == (16, 4, 4)
    assert [block.layer2.conv.weight.shape[0] for block in synthesis.blocks] == [8, 8, 8]
    with pytest.raises(ValueError, match="power of two"):
        StyleSynthesis(8, resolution=24, state_channels=4, channels=(16,))
