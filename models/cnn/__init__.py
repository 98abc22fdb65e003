"""Image classifiers: CIFAR DenseNets and ResNets, a 32x32 ResNet-18, a small CNN, and their LightningModule.

- `nets/`: the plain networks (`nn.Module`s; no Lightning, no data code).
- `module.py`: `ImageClassifierModel`, the LightningModule that trains any of them.
"""

# Moved or renamed code; old checkpoints' stored configs name it (see training.toolkit.moved_modules).
MOVED = {
    # the plain networks
    "models.cnn.densenet": "models.cnn.nets.densenet",
    "models.cnn.resnet18": "models.cnn.nets.resnet18",
    "models.cnn.resnet_cifar": "models.cnn.nets.resnet_cifar",
    "models.cnn.small_cnn": "models.cnn.nets.small_cnn",
    # ... and the names this package re-exported
    "models.cnn.CifarResNet": "models.cnn.nets.CifarResNet",
    "models.cnn.DenseNet3": "models.cnn.nets.DenseNet3",
    "models.cnn.SmallCNN": "models.cnn.nets.SmallCNN",
    "models.cnn.densenet40_k12": "models.cnn.nets.densenet40_k12",
    "models.cnn.densenet_bc100_k12": "models.cnn.nets.densenet_bc100_k12",
    "models.cnn.resnet20": "models.cnn.nets.resnet20",
    "models.cnn.resnet32": "models.cnn.nets.resnet32",
    "models.cnn.resnet44": "models.cnn.nets.resnet44",
    "models.cnn.resnet56": "models.cnn.nets.resnet56",
    "models.cnn.resnet110": "models.cnn.nets.resnet110",
    # the LightningModule (ImageClassifier -> ImageClassifierModel)
    "models.cnn.classifier": "models.cnn.module",
    "models.cnn.classifier.ImageClassifier": "models.cnn.module.ImageClassifierModel",
}
