"""Old checkpoints keep working: every `_target_` the design configs named before the system took its
current shape (`models/design/<stage>/module.py`, `nets/`, `<Stage>Model`, `DesignDM`) upgrades, through
the packages' MOVED tables, to the class that has it now; every MOVED entry points at code that exists."""

import hydra.utils
import pytest
import torch
from omegaconf import OmegaConf

import datamodules.design
import models.design
from datamodules.design.datamodule import DesignDM
from datamodules.design.innovation_datamodule import InnovationDM
from models.design.abstractor.module import AbstractorModel
from models.design.decoder.module import DecoderModel
from models.design.decoder.quality import DecoderQuality
from models.design.encoder.loss import CompositeLoss
from models.design.encoder.module import EncoderModel
from models.design.finetune.module import FinetuneModel
from models.design.innovation.module import InnovationModel
from models.design.nets.abstractor import Abstractor
from models.design.nets.diffusion_unet import ConditionalUNet
from models.design.nets.meta_tokens import MetaTokens
from models.design.nets.unet import DesignUNet
from tests.helpers import CONF_DIR
from tests.models.design.stage_checkpoints import tiny_encoder_config
from training.toolkit.checkpoints import META_KEY, checkpoint_metadata
from training.toolkit.moved_modules import upgrade_target, upgrade_targets
from training.toolkit.stage_checkpoint import load_trained_module

# every `_target_` of conf/model/design_*.yaml and conf/data/design*.yaml before the move
OLD_TARGETS = {
    "models.design.encoder_module.EncoderModule": EncoderModel,
    "models.design.unet.DesignUNet": DesignUNet,
    "models.design.encoder_loss.CompositeLoss": CompositeLoss,
    "models.design.abstractor_module.AbstractorModule": AbstractorModel,
    "models.design.abstractor.Abstractor": Abstractor,
    "models.design.decoder_module.DecoderModule": DecoderModel,
    "models.design.decoder_quality.DecoderQuality": DecoderQuality,
    "models.design.diffusion_unet.ConditionalUNet": ConditionalUNet,
    "models.design.meta_tokens.MetaTokens": MetaTokens,
    "models.design.finetune_module.FinetuneModule": FinetuneModel,
    "models.design.innovation_module.InnovationModule": InnovationModel,
    "datamodules.design.DesignDataModule": DesignDM,
    "datamodules.design.innovation.InnovationDataModule": InnovationDM,
}
MOVED = {**models.design.MOVED, **datamodules.design.MOVED}


@pytest.mark.parametrize("old", list(OLD_TARGETS))
def test_an_old_target_upgrades_to_its_class(old):
    new = upgrade_target(old)
    assert new != old  # the old path resolves no more (else it would be kept)
    assert hydra.utils.get_object(new) is OLD_TARGETS[old]


def test_the_upgraded_targets_are_the_ones_the_configs_name_now():
    def targets(node) -> set[str]:
        if isinstance(node, dict):
            return {v for k, v in node.items() if k == "_target_"} | set().union(*map(targets, node.values()))
        return set().union(*map(targets, node)) if isinstance(node, list) else set()

    files = [*CONF_DIR.glob("model/design_*.yaml"), *CONF_DIR.glob("data/design*.yaml")]
    named = set().union(*(targets(OmegaConf.to_container(OmegaConf.load(f))) for f in files))
    now = {target for target in named if target.startswith(("models.design.", "datamodules.design."))}
    assert {upgrade_target(old) for old in OLD_TARGETS} == now
    assert all(upgrade_target(target) == target for target in now)  # current paths stay as they are
    stored = {
        "model": {"_target_": "models.design.unet.DesignUNet"},
        "data": [{"_target_": "datamodules.design.DesignDataModule"}],
    }
    assert upgrade_targets(stored) == {
        "model": {"_target_": "models.design.nets.unet.DesignUNet"},
        "data": [{"_target_": "datamodules.design.DesignDM"}],
    }


def test_an_encoder_checkpoint_written_before_the_move_loads_as_an_encoder_model(tmp_path):
    config = tiny_encoder_config()
    torch.manual_seed(0)
    module = hydra.utils.instantiate(config)
    stored = {
        **config,
        "_target_": "models.design.encoder_module.EncoderModule",
        "net": {**config["net"], "_target_": "models.design.unet.DesignUNet"},
    }
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": module.state_dict(), META_KEY: checkpoint_metadata({"model": stored})}, path)
    loaded = load_trained_module(path, "model.encoder_checkpoint", expected=EncoderModel)
    assert isinstance(loaded.net, DesignUNet)
    for name, value in module.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value)
