"""Old cnn checkpoints keep loading: every `_target_` the configs named before the networks moved into
`models.cnn.nets` (and the classes took their `Model` / `DM` names) upgrades to the code that replaced it."""

from __future__ import annotations

from typing import Any

import hydra
import pytest
import torch

from datamodules.cnn.datamodule import ImageClassificationDM
from models.cnn import module, nets
from models.cnn.nets import densenet, resnet18, resnet_cifar, small_cnn
from training.toolkit.checkpoints import META_KEY, checkpoint_metadata, stored_config
from training.toolkit.moved_modules import upgrade_target, upgrade_targets
from training.toolkit.stage_checkpoint import load_trained_module

# Every cnn `_target_` in conf/ before the move (conf/model/{densenet*,resnet*,small_cnn}.yaml, conf/data/).
OLD_TARGETS: dict[str, Any] = {
    "models.cnn.classifier.ImageClassifier": module.ImageClassifierModel,
    "models.cnn.densenet.DenseNet3": densenet.DenseNet3,
    "models.cnn.resnet18.resnet18": resnet18.resnet18,
    "models.cnn.resnet_cifar.resnet20": resnet_cifar.resnet20,
    "models.cnn.resnet_cifar.resnet32": resnet_cifar.resnet32,
    "models.cnn.resnet_cifar.resnet44": resnet_cifar.resnet44,
    "models.cnn.resnet_cifar.resnet56": resnet_cifar.resnet56,
    "models.cnn.resnet_cifar.resnet110": resnet_cifar.resnet110,
    "models.cnn.small_cnn.SmallCNN": small_cnn.SmallCNN,
    "datamodules.cnn.ImageClassificationDataModule": ImageClassificationDM,
}
# Other names that moved with their modules (reachable from an old config, or an old import).
OTHER_OLD_PATHS: dict[str, Any] = {
    "models.cnn.classifier.check_net_fits_data": module.check_net_fits_data,
    "models.cnn.DenseNet3": nets.DenseNet3,
    "models.cnn.resnet56": nets.resnet56,
    "datamodules.cnn.datamodule.ImageClassificationDataModule": ImageClassificationDM,
}


@pytest.mark.parametrize("old", sorted({**OLD_TARGETS, **OTHER_OLD_PATHS}))
def test_an_old_path_upgrades_to_the_object_that_replaced_it(old: str) -> None:
    with pytest.raises(ImportError):  # the old path itself is gone: the upgrade is what loads it
        hydra.utils.get_object(old)
    assert hydra.utils.get_object(upgrade_target(old)) is {**OLD_TARGETS, **OTHER_OLD_PATHS}[old]


def test_a_checkpoint_that_names_the_old_paths_loads_as_the_current_classifier(tmp_path) -> None:
    stored = {
        "name": "old_cnn_run",
        "data": {"_target_": "datamodules.cnn.ImageClassificationDataModule", "dataset": "digits"},
        "model": {
            "_target_": "models.cnn.classifier.ImageClassifier",
            "num_classes": 3,
            "optimizer": {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1},
            "net": {"_target_": "models.cnn.small_cnn.SmallCNN", "num_classes": 3, "channels": [4, 8]},
        },
    }
    torch.manual_seed(0)
    trained = hydra.utils.instantiate(upgrade_targets(stored)["model"])
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": trained.state_dict(), META_KEY: checkpoint_metadata(stored)}, path)

    loaded = load_trained_module(path, "ckpt_path")

    assert type(loaded) is module.ImageClassifierModel and type(loaded.net) is small_cnn.SmallCNN
    assert stored_config(path, "ckpt_path")["data"]["_target_"] == "datamodules.cnn.ImageClassificationDM"
    for name, tensor in trained.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
