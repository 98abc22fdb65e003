"""`DesignUNet`: the design encoder's network — reads a design image, predicts its F_Tensor as four heads.

A plain U-Net (Ronneberger et al.): an input block, `depth` down blocks (max-pool + two convs), `depth`
up blocks (transposed conv + skip concatenation + two convs), then one 1x1 conv whose channels are split
into the heads: text and image mask logits, colour-ID logits and the hierarchy value (unbounded; the
module clamps it to [0, 1] when it reads it as an F_Tensor). With `color_prior_width` the colour logits
start from the vocabulary's own naming of each pixel (`ColorNamingPrior`) and the network learns the rest.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from models.design.nets.encoder_heads import ColorNamingPrior, EncoderOutput
from models.design.schema import NUM_COLOR_IDS
from training.toolkit.errors import UserError


class ConvBlock(nn.Module):
    """Two (3x3 conv -> GroupNorm -> SiLU) layers; GroupNorm so small GPU batches and DDP need no BN sync."""

    def __init__(self, in_channels: int, out_channels: int, norm_groups: int) -> None:
        super().__init__()
        groups = math.gcd(norm_groups, out_channels)  # GroupNorm needs groups | channels
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.GroupNorm(groups, out_channels),
            nn.SiLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.GroupNorm(groups, out_channels),
            nn.SiLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DownBlock(nn.Module):
    """Halve the resolution (max-pool), then a ConvBlock."""

    def __init__(self, in_channels: int, out_channels: int, norm_groups: int) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2)
        self.conv = ConvBlock(in_channels, out_channels, norm_groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


class UpBlock(nn.Module):
    """Double the resolution (2x2 transposed conv), concatenate the skip, then a ConvBlock."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, norm_groups: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, skip_channels, 2, stride=2)
        self.conv = ConvBlock(2 * skip_channels, out_channels, norm_groups)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class DesignUNet(nn.Module):
    """U-Net with `depth` down and up blocks; level i has `min(base_channels * 2**i, max_channels)` channels.

    Input: images (B, in_channels, H, W) in [-1, 1] with H and W divisible by 2**depth.
    """

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 16,
        depth: int = 4,
        max_channels: int = 256,
        norm_groups: int = 8,
        color_prior_width: float | None = None,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise UserError(f"DesignUNet: model.net.depth must be >= 1, got {depth}.")
        self.depth = depth
        widths = [min(base_channels * 2**level, max_channels) for level in range(depth + 1)]
        self.inc = ConvBlock(in_channels, widths[0], norm_groups)
        self.down = nn.ModuleList(DownBlock(widths[i], widths[i + 1], norm_groups) for i in range(depth))
        self.up = nn.ModuleList(
            UpBlock(widths[i + 1], widths[i], widths[i], norm_groups) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], 3 + NUM_COLOR_IDS, 1)
        self.color_prior = ColorNamingPrior(color_prior_width) if color_prior_width else None

    def forward(self, images: torch.Tensor) -> EncoderOutput:
        height, width = images.shape[-2:]
        multiple = 2**self.depth
        if height % multiple or width % multiple:
            raise UserError(
                f"DesignUNet(depth={self.depth}) needs image sides divisible by {multiple}, got {height}x{width}: "
                f"set data.resolution to a multiple of {multiple} (64, 128, 256) or lower model.net.depth."
            )
        x = self.inc(images)
        skips = [x]
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()  # the bottleneck is x itself
        for block in self.up:
            x = block(x, skips.pop())
        text, image, color, hierarchy = self.head(x).split([1, 1, NUM_COLOR_IDS, 1], dim=1)
        if self.color_prior is not None:
            color = color + self.color_prior(images).to(color.dtype)
        return EncoderOutput(text=text, image=image, color=color, hierarchy=hierarchy)
