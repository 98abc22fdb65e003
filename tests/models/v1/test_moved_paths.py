"""Old checkpoints keep working: every `_target_` a v1 config named before the networks moved to
`models/v1/nets/` (and the baselines lost their `Model` suffix) upgrades to the class it named."""

from __future__ import annotations

import hydra
import pytest

from models.v1.nets.baselines import LNNet, NullNet
from models.v1.nets.core import V1Core
from models.v1.nets.network import MultiSessionNet
from training.toolkit.moved_modules import moved_path, upgrade_target, upgrade_targets

# Every `_target_` under models.v1 / datamodules.v1 that a file in conf/ named before the move.
OLD_TARGETS = {
    "models.v1.network.MultiSessionNet": MultiSessionNet,
    "models.v1.core.V1Core": V1Core,
    "models.v1.baselines.NullModel": NullNet,
    "models.v1.baselines.LNModel": LNNet,
    "models.v1.module.MultiDatasetModel": "models.v1.module.MultiDatasetModel",  # unchanged
    "datamodules.v1.MultiDatasetDM": "datamodules.v1.datamodule.MultiDatasetDM",  # unchanged
}


@pytest.mark.parametrize("old", list(OLD_TARGETS))
def test_each_old_target_upgrades_to_its_class(old):
    expected = OLD_TARGETS[old]
    if isinstance(expected, str):
        expected = hydra.utils.get_object(expected)
    assert hydra.utils.get_object(upgrade_target(old)) is expected


def test_a_stored_config_is_read_under_the_new_paths():
    stored = {
        "model": {
            "_target_": "models.v1.module.MultiDatasetModel",
            "net": {
                "_target_": "models.v1.network.MultiSessionNet",
                "core": {"_target_": "models.v1.core.V1Core"},
            },
        }
    }
    net = upgrade_targets(stored)["model"]["net"]
    assert (net["_target_"], net["core"]["_target_"]) == (
        "models.v1.nets.network.MultiSessionNet",
        "models.v1.nets.core.V1Core",
    )


def test_a_name_inside_a_moved_module_follows_it():
    assert moved_path("models.v1.core.LAPLACIAN") == "models.v1.nets.core.LAPLACIAN"
