"""A small CNN for MNIST-like and 8x8 digit images: two conv blocks, global pooling, linear head.

Adaptive average pooling makes it independent of the input size (anything from 8x8 up).
"""

from __future__ import annotations

import torch
from torch import nn


class ConvBlock(nn.Sequential):
    """3x3 conv (same padding) -> BatchNorm -> ReLU -> 2x2 max-pool."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2),
        )


class SmallCNN(nn.Module):
    """Two conv blocks (`channels[0]`, `channels[1]` maps), global average pool, dropout, linear head."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        channels: tuple[int, int] = (32, 64),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            ConvBlock(in_channels, channels[0]),
            ConvBlock(channels[0], channels[1]),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels[1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.features(x)))
