"""ResNet-18 adapted to 32x32 inputs: torchvision's network with a 3x3 stride-1 stem and no max-pool.

The ImageNet stem (7x7 stride 2 + max-pool) shrinks a CIFAR image to 8x8 before the first block;
the common CIFAR variant keeps full resolution there instead.
"""

from __future__ import annotations

from torch import nn
from torchvision.models import ResNet
from torchvision.models import resnet18 as torchvision_resnet18


def resnet18(num_classes: int = 10, in_channels: int = 3) -> ResNet:
    """Randomly initialised torchvision ResNet-18 with a CIFAR stem (11.17M parameters for 10 classes)."""
    model = torchvision_resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision does
    model.maxpool = nn.Identity()
    return model
