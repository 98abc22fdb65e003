"""The cnn system's plain networks (`nn.Module`s; no Lightning, no data code): DenseNet3, CIFAR ResNets, a
32x32 ResNet-18 and a small CNN. `models.cnn.module.ImageClassifierModel` trains any of them.

The `resnet18` factory is not re-exported here: the name would shadow the `models.cnn.nets.resnet18`
module, which Hydra's `_target_: models.cnn.nets.resnet18.resnet18` must resolve.
"""

from models.cnn.nets.densenet import DenseNet3, densenet40_k12, densenet_bc100_k12
from models.cnn.nets.resnet_cifar import CifarResNet, resnet20, resnet32, resnet44, resnet56, resnet110
from models.cnn.nets.small_cnn import SmallCNN

__all__ = [
    "CifarResNet",
    "DenseNet3",
    "SmallCNN",
    "densenet40_k12",
    "densenet_bc100_k12",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
]
