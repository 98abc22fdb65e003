"""DenseNet for CIFAR-sized images (Huang et al., 2017, "Densely Connected Convolutional Networks").

Three dense blocks joined by transition layers; every layer sees the concatenation of all earlier
feature maps in its block. `bottleneck=True` with `reduction<1` gives DenseNet-BC. The stem conv has
16 channels without bottlenecks and 2k with them, as in the paper, unless `stem_channels` says otherwise
(Torch-Playground's DenseNet-40 used 2k = 24; `training.migrate` sets it from such a file).
"""

from __future__ import annotations

import torch
from torch import nn


class DenseLayer(nn.Module):
    """BN-ReLU-Conv3x3 (optionally preceded by a BN-ReLU-Conv1x1 bottleneck to 4k maps) adding k maps."""

    def __init__(self, in_channels: int, growth_rate: int, bottleneck: bool, drop_rate: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        conv_in = in_channels
        if bottleneck:
            conv_in = 4 * growth_rate
            layers += [
                nn.BatchNorm2d(in_channels),
                nn.ReLU(inplace=True),
                nn.Conv2d(in_channels, conv_in, kernel_size=1, bias=False),
                nn.Dropout(drop_rate),
            ]
        layers += [
            nn.BatchNorm2d(conv_in),
            nn.ReLU(inplace=True),
            nn.Conv2d(conv_in, growth_rate, kernel_size=3, padding=1, bias=False),
            nn.Dropout(drop_rate),
        ]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], dim=1)


class DenseBlock(nn.Sequential):
    """`num_layers` dense layers; the channel count grows by `growth_rate` per layer."""

    def __init__(
        self, num_layers: int, in_channels: int, growth_rate: int, bottleneck: bool, drop_rate: float
    ) -> None:
        super().__init__(
            *(
                DenseLayer(in_channels + i * growth_rate, growth_rate, bottleneck, drop_rate)
                for i in range(num_layers)
            )
        )


class Transition(nn.Sequential):
    """BN-ReLU-Conv1x1 (compressing channels) then 2x2 average pooling, halving the resolution."""

    def __init__(self, in_channels: int, out_channels: int, drop_rate: float) -> None:
        super().__init__(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
            nn.Dropout(drop_rate),
            nn.AvgPool2d(kernel_size=2),
        )


class DenseNet3(nn.Module):
    """CIFAR DenseNet with three dense blocks of (depth-4)/3 layers each (half as many with bottlenecks)."""

    def __init__(
        self,
        depth: int,
        num_classes: int,
        growth_rate: int = 12,
        reduction: float = 1.0,
        bottleneck: bool = False,
        drop_rate: float = 0.0,
        in_channels: int = 3,
        stem_channels: int | None = None,
    ) -> None:
        super().__init__()
        layers_per_block = _layers_per_block(depth, bottleneck)
        if not 0.0 < reduction <= 1.0:
            raise ValueError(f"DenseNet3 reduction (compression) must be in (0, 1], got {reduction}.")
        if stem_channels is not None and (not isinstance(stem_channels, int) or stem_channels < 1):
            raise ValueError(
                f"DenseNet3 stem_channels must be a positive integer or null (16, or 2k with bottleneck), "
                f"got {stem_channels!r}."
            )

        channels = stem_channels or (2 * growth_rate if bottleneck else 16)
        stages: list[nn.Module] = [nn.Conv2d(in_channels, channels, kernel_size=3, padding=1, bias=False)]
        for block_index in range(3):
            stages.append(DenseBlock(layers_per_block, channels, growth_rate, bottleneck, drop_rate))
            channels += layers_per_block * growth_rate
            if block_index < 2:
                compressed = int(channels * reduction)
                stages.append(Transition(channels, compressed, drop_rate))
                channels = compressed
        stages += [
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        ]
        self.features = nn.Sequential(*stages)
        self.classifier = nn.Linear(channels, num_classes)
        self.num_features = channels
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _layers_per_block(depth: int, bottleneck: bool) -> int:
    """Layers in each of the three dense blocks; rejects depths that do not give whole blocks."""
    step = 6 if bottleneck else 3
    if not isinstance(depth, int) or depth < 4 + step or (depth - 4) % step != 0:
        form = "6n+4 (bottleneck=True), e.g. 100" if bottleneck else "3n+4 (bottleneck=False), e.g. 40"
        raise ValueError(f"DenseNet3 depth must have the form {form} with n >= 1, got depth={depth!r}.")
    return (depth - 4) // step


def _init_weights(model: nn.Module) -> None:
    """He-normal convolutions, unit BatchNorm, zero linear bias (as in the reference implementation)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)


def densenet40_k12(num_classes: int = 10, in_channels: int = 3, drop_rate: float = 0.0) -> DenseNet3:
    """DenseNet (L=40, k=12): the paper's 1.0M-parameter CIFAR model."""
    return DenseNet3(
        40,
        num_classes,
        growth_rate=12,
        reduction=1.0,
        bottleneck=False,
        drop_rate=drop_rate,
        in_channels=in_channels,
    )


def densenet_bc100_k12(num_classes: int = 10, in_channels: int = 3, drop_rate: float = 0.0) -> DenseNet3:
    """DenseNet-BC (L=100, k=12): bottlenecks and 0.5 compression, 0.8M parameters."""
    return DenseNet3(
        100,
        num_classes,
        growth_rate=12,
        reduction=0.5,
        bottleneck=True,
        drop_rate=drop_rate,
        in_channels=in_channels,
    )
