"""Old ukiyoe checkpoints keep loading: every `_target_` the configs named before the networks moved into
`models.ukiyoe.nets` (and the classes took their `Model` / `DM` names) upgrades to the code that replaced it."""

from __future__ import annotations

from typing import Any

import hydra
import pytest
import torch

from datamodules.ukiyoe import datamodule, target_datamodule
from models.ukiyoe import gan_module, grow_module, schema
from models.ukiyoe.nets import critic, discriminator, generator, nca, palette, stylegan
from training.toolkit.checkpoints import META_KEY, checkpoint_metadata, stored_config
from training.toolkit.moved_modules import upgrade_target, upgrade_targets
from training.toolkit.stage_checkpoint import load_trained_module

# Every ukiyoe `_target_` in conf/ before the move that no longer resolves as written
# (conf/model/ukiyoe_*.yaml, conf/data/ukiyoe*.yaml).
OLD_TARGETS: dict[str, Any] = {
    "models.ukiyoe.gan_module.UkiyoeGAN": gan_module.UkiyoeGANModel,
    "models.ukiyoe.grow_module.GrowModule": grow_module.GrowModel,
    "models.ukiyoe.generator.UkiyoeGenerator": generator.UkiyoeGenerator,
    "models.ukiyoe.stylegan.StyleGenerator": stylegan.StyleGenerator,
    "models.ukiyoe.nca.IntegratedNCA": nca.IntegratedNCA,
    "models.ukiyoe.palette.GumbelPalette": palette.GumbelPalette,
    "models.ukiyoe.discriminator.ResidualDiscriminator": discriminator.ResidualDiscriminator,
    "models.ukiyoe.critic.TransformerCritic": critic.TransformerCritic,
    "datamodules.ukiyoe.UkiyoeDataModule": datamodule.UkiyoeDM,
    "datamodules.ukiyoe.target.TargetDataModule": target_datamodule.TargetDM,
}
# The ukiyoe `_target_`s of conf/ that did not move: they resolve as they are.
UNMOVED_TARGETS = (
    "models.ukiyoe.augment.DiffAugment",
    "models.ukiyoe.balance.BalanceController",
    "models.ukiyoe.quality.UkiyoeQuality",
)
# Other names that moved with their modules (reachable from an old config, or an old import).
OTHER_OLD_PATHS: dict[str, Any] = {
    "models.ukiyoe.nca.perceive": nca.perceive,
    "models.ukiyoe.stylegan.MappingNetwork": stylegan.MappingNetwork,
    "datamodules.ukiyoe.datamodule.UkiyoeDataModule": datamodule.UkiyoeDM,
    "datamodules.ukiyoe.target.load_target": target_datamodule.load_target,
    "datamodules.ukiyoe.PIGMENTS": schema.PIGMENTS,
}


@pytest.mark.parametrize("old", sorted({**OLD_TARGETS, **OTHER_OLD_PATHS}))
def test_an_old_path_upgrades_to_the_object_that_replaced_it(old: str) -> None:
    with pytest.raises(ImportError):  # the old path itself is gone: the upgrade is what loads it
        hydra.utils.get_object(old)
    assert hydra.utils.get_object(upgrade_target(old)) is {**OLD_TARGETS, **OTHER_OLD_PATHS}[old]


@pytest.mark.parametrize("target", UNMOVED_TARGETS)
def test_a_target_that_did_not_move_is_kept(target: str) -> None:
    assert upgrade_target(target) == target
    hydra.utils.get_object(target)


def test_a_checkpoint_that_names_the_old_paths_loads_as_the_current_model(tmp_path) -> None:
    stored = {
        "name": "old_grow_run",
        "data": {"_target_": "datamodules.ukiyoe.target.TargetDataModule", "resolution": 8, "canvas": 12},
        "model": {
            "_target_": "models.ukiyoe.grow_module.GrowModule",
            "nca": {
                "_target_": "models.ukiyoe.nca.IntegratedNCA",
                "state_channels": 8,
                "w_dim": 0,
                "num_colors": 0,
            },
            "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3},
            "canvas": 12,
            "pool_size": 4,
            "batch_size": 2,
            "damage_count": 1,
        },
    }
    torch.manual_seed(0)
    trained = hydra.utils.instantiate(upgrade_targets(stored)["model"])
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": trained.state_dict(), META_KEY: checkpoint_metadata(stored)}, path)

    loaded = load_trained_module(path, "ckpt_path")

    assert type(loaded) is grow_module.GrowModel and type(loaded.nca) is nca.IntegratedNCA
    data = stored_config(path, "ckpt_path")["data"]
    assert data["_target_"] == "datamodules.ukiyoe.target_datamodule.TargetDM"
    for name, tensor in trained.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
