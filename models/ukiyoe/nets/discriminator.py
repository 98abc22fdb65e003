"""StyleGAN2-style residual discriminator with minibatch standard deviation: images -> logits (B,).

Residual blocks halve the resolution down to 4x4; there minibatch-std appends how much the samples of a
group differ (a collapsed generator makes them alike, which the discriminator can then see), and a 3x3
conv plus two dense layers give one logit per image. Blocks first, then the network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

SLOPE = 0.2


class MinibatchStd(nn.Module):
    """Appends `num_channels` maps: the std over a group of samples, averaged over features and pixels.

    Groups are consecutive samples, of size min(group_size, B) lowered to the nearest divisor of B, so any
    batch size works (B = 1 gives a group of one, whose std is 0)."""

    def __init__(self, group_size: int = 4, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def group_for(self, batch: int) -> int:
        group = min(self.group_size, batch)
        while batch % group:
            group -= 1
        return group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        group = self.group_for(batch)
        y = x.reshape(-1, group, self.num_channels, channels // self.num_channels, height, width)
        y = torch.sqrt(y.var(dim=1, unbiased=False) + 1e-8)  # (B / group, F, C / F, H, W)
        y = y.mean(dim=(2, 3, 4))  # (B / group, F)
        y = y.repeat_interleave(group, dim=0)[:, :, None, None].expand(-1, -1, height, width)
        return torch.cat([x, y], dim=1)


class ResidualBlock(nn.Module):
    """A 3x3 conv, 2x average-pool downsampling, a 3x3 conv at the lower resolution (StyleGAN2 downsamples
    inside its second conv too, which keeps it cheap), plus a downsampled 1x1 skip; the sum is scaled by
    1/sqrt(2) to keep the variance of the residual stream."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv1(x), SLOPE)
        h = F.leaky_relu(self.conv2(F.avg_pool2d(h, 2)), SLOPE)
        return (self.skip(F.avg_pool2d(x, 2)) + h) / math.sqrt(2.0)


class ResidualDiscriminator(nn.Module):
    """x (B, in_channels, R, R) in [-1, 1] -> real/fake logits (B,).

    `channels[i]` is the width after i residual blocks (the 1x1 input layer has channels[0]); the last
    entry carries on for deeper blocks. R must be 4 times a power of two.
    """

    def __init__(
        self,
        resolution: int = 32,
        channels: Sequence[int] = (32, 64, 128),
        in_channels: int = 3,
        mbstd_group_size: int = 4,
    ) -> None:
        super().__init__()
        num_blocks = round(math.log2(resolution / 4)) if resolution >= 4 else -1
        if num_blocks < 0 or 4 * 2**num_blocks != resolution:
            raise ValueError(
                f"ResidualDiscriminator: resolution {resolution} is not 4 times a power of two; "
                "pick a resolution such as 32, 64 or 128."
            )
        if not channels:
            raise ValueError("ResidualDiscriminator: channels must list at least one width.")
        widths = [channels[min(level, len(channels) - 1)] for level in range(num_blocks + 1)]
        self.resolution = resolution
        self.from_image = nn.Conv2d(in_channels, widths[0], 1)
        self.blocks = nn.Sequential(*(ResidualBlock(cin, cout) for cin, cout in pairwise(widths)))
        self.mbstd = MinibatchStd(mbstd_group_size)
        self.conv = nn.Conv2d(widths[-1] + 1, widths[-1], 3, padding=1)
        self.dense = nn.Linear(widths[-1] * 4 * 4, widths[-1])
        self.out = nn.Linear(widths[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.resolution, self.resolution):
            raise ValueError(
                f"ResidualDiscriminator: built for {self.resolution}px images, got {tuple(x.shape[-2:])}."
            )
        h = self.blocks(F.leaky_relu(self.from_image(x), SLOPE))
        h = F.leaky_relu(self.conv(self.mbstd(h)), SLOPE)
        h = F.leaky_relu(self.dense(h.flatten(1)), SLOPE)
        return self.out(h).squeeze(1)
