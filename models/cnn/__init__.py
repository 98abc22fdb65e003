"""Image classifiers: CIFAR DenseNets and ResNets, a 32x32 ResNet-18, a small CNN, and their LightningModule.

Architectures are plain `nn.Module`s; `models.cnn.classifier.ImageClassifier` trains any of them.
The `resnet18` factory is not re-exported here: the name would shadow the `models.cnn.resnet18`
module, which Hydra's `_target_: models.cnn.resnet18.resnet18` must resolve.
"""

from models.cnn.densenet import DenseNet3, densenet40_k12, densenet_bc100_k12
from models.cnn.resnet_cifar import CifarResNet, resnet20, resnet32, resnet44, resnet56, resnet110
from models.cnn.small_cnn import SmallCNN

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
