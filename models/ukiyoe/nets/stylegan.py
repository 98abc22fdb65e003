"""StyleGAN2-style generator of the NCA's initial state: z -> w -> modulated convolutions -> state.

Karras et al. 2020 ("Analyzing and Improving the Image Quality of StyleGAN"): a mapping network with
equalised learning rate turns z into the style w; a learned 4x4 constant is upsampled block by block
through 3x3 convolutions whose weights are scaled per sample by w (modulation) and renormalised to
unit output variance (demodulation), with per-pixel noise; a last 1x1 modulated convolution reads out
`state_channels` maps. Blocks first, then the networks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

# Leaky ReLU with the sqrt(2) gain of StyleGAN, so that activations keep unit variance layer after layer.
SLOPE = 0.2
GAIN = math.sqrt(2.0)


def leaky_relu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, SLOPE) * GAIN


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: N(0, 1) weights scaled at run time by lr_mul/sqrt(fan_in),
    so that Adam's per-parameter step sizes are the same for every layer (`lr_multiplier` slows it down)."""

    def __init__(
        self, in_features: int, out_features: int, bias_init: float = 0.0, lr_multiplier: float = 1.0
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_multiplier))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.lr_multiplier = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_multiplier)


class MappingNetwork(nn.Module):
    """z (B, z_dim) -> w (B, w_dim): pixel norm, then `num_layers` equalised-lr linear layers + leaky ReLU."""

    def __init__(self, z_dim: int, w_dim: int, num_layers: int, lr_multiplier: float = 0.01) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"MappingNetwork: num_layers must be at least 1, got {num_layers}.")
        widths = [z_dim] + [w_dim] * num_layers
        self.layers = nn.ModuleList(
            EqualLinear(cin, cout, lr_multiplier=lr_multiplier) for cin, cout in pairwise(widths)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
        for layer in self.layers:
            x = leaky_relu(layer(x))
        return x


class ModulatedConv2d(nn.Module):
    """Convolution whose weights are scaled per sample and input channel by the style (affine of w), then
    (if `demodulate`) normalised per output channel to unit output variance. `upsample` doubles the
    resolution (bilinear) first."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        w_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
    ) -> None:
        super().__init__()
        # Styles start at 1: at initialisation the layer is a plain (equalised-lr) convolution.
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.demodulate = demodulate
        self.upsample = upsample
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        styles = self.affine(w)
        weight = self.weight * self.weight_gain
        # Modulating the input and demodulating the output equals convolving each sample with its own
        # scaled, normalised weights (StyleGAN2's non-fused form), and shares one convolution across the
        # batch: several times faster than a grouped convolution per sample, backward pass included.
        out = F.conv2d(x * styles[:, :, None, None], weight, padding=self.padding)
        if self.demodulate:
            squared = weight.square().sum(dim=(2, 3))  # (out, in)
            out = out * torch.rsqrt(styles.square() @ squared.T + 1e-8)[:, :, None, None]
        return out + self.bias[None, :, None, None]


class NoiseInjection(nn.Module):
    """Adds per-pixel Gaussian noise (shared by the channels) scaled by a learned per-channel strength that
    starts at 0, so the generator learns how much stochastic detail each feature map wants."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        return x + self.strength[None, :, None, None] * noise


class StyleLayer(nn.Module):
    """Modulated 3x3 convolution, noise, leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, upsample: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, upsample=upsample)
        self.noise = NoiseInjection(out_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return leaky_relu(self.noise(self.conv(x, w)))


class StyleBlock(nn.Module):
    """One resolution step: upsample x2 with the first of two style layers."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int) -> None:
        super().__init__()
        self.layer1 = StyleLayer(in_channels, out_channels, w_dim, upsample=True)
        self.layer2 = StyleLayer(out_channels, out_channels, w_dim)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.layer2(self.layer1(x, w), w)


class StyleSynthesis(nn.Module):
    """w (B, w_dim) -> (B, state_channels, resolution, resolution) from a learned constant.

    `channels[i]` is the width at resolution start_resolution * 2**i (the constant has channels[0]); the
    last entry carries on for any higher resolutions. `resolution` must be start_resolution times a power
    of two.
    """

    def __init__(
        self,
        w_dim: int,
        resolution: int,
        state_channels: int,
        channels: Sequence[int],
        start_resolution: int = 4,
    ) -> None:
        super().__init__()
        num_blocks = round(math.log2(resolution / start_resolution)) if resolution >= start_resolution else -1
        if num_blocks < 0 or start_resolution * 2**num_blocks != resolution:
            raise ValueError(
                f"StyleSynthesis: resolution {resolution} is not start_resolution {start_resolution} "
                "times a power of two; pick a resolution such as 32, 64 or 128."
            )
        if not channels:
            raise ValueError("StyleSynthesis: channels must list at least one width.")
        widths = [channels[min(level, len(channels) - 1)] for level in range(num_blocks + 1)]
        self.constant = nn.Parameter(torch.randn(widths[0], start_resolution, start_resolution))
        self.blocks = nn.ModuleList(StyleBlock(cin, cout, w_dim) for cin, cout in pairwise(widths))
        # The read-out is linear in the features (no demodulation), as StyleGAN2's toRGB.
        self.to_state = ModulatedConv2d(widths[-1], state_channels, 1, w_dim, demodulate=False)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        x = self.constant[None].expand(w.shape[0], -1, -1, -1)
        for block in self.blocks:
            x = block(x, w)
        return self.to_state(x, w)


class StyleGenerator(nn.Module):
    """z (B, z_dim) -> (NCA initial state (B, state_channels, R, R), style w (B, w_dim))."""

    def __init__(
        self,
        z_dim: int = 64,
        w_dim: int = 64,
        mapping_layers: int = 4,
        resolution: int = 32,
        state_channels: int = 16,
        channels: Sequence[int] = (64, 32),
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.w_dim = w_dim
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers)
        self.synthesis = StyleSynthesis(w_dim, resolution, state_channels, channels)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.mapping(z)
        return self.synthesis(w), w
