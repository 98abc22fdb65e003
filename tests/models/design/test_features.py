"""The design FID/KID features: encoder soft structure -> abstractor FC-512, rebuilt from checkpoints alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from models.design.features import DesignFeatures
from models.design.schema import to_model_image
from tests.models.design.stage_checkpoints import OPTIMIZER, tiny_encoder_config, write_checkpoint
from training.toolkit.checkpoints import META_KEY
from training.toolkit.errors import UserError
from training.toolkit.stage_checkpoint import load_trained_module

RESOLUTION = 16
ABSTRACTOR_CONFIG = {
    "_target_": "models.design.abstractor.module.AbstractorModel",
    "net": {"_target_": "models.design.nets.abstractor.Abstractor", "head_hidden": 8},
    "optimizer": OPTIMIZER,
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> tuple[Path, Path]:
    """An encoder run at data.resolution=RESOLUTION and an abstractor run."""
    folder = tmp_path_factory.mktemp("design_stages")
    encoder = write_checkpoint(folder / "encoder.ckpt", tiny_encoder_config(), seed=1)
    checkpoint = torch.load(encoder, weights_only=True)
    checkpoint[META_KEY]["config"]["data"] = {"resolution": RESOLUTION}
    torch.save(checkpoint, encoder)
    return encoder, write_checkpoint(folder / "abstractor.ckpt", ABSTRACTOR_CONFIG, seed=2)


@pytest.fixture(scope="module")
def features(checkpoints) -> DesignFeatures:
    return DesignFeatures.from_checkpoints(*checkpoints)


def images(count: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (count, 3, size, size), generator=torch.Generator().manual_seed(seed)).byte()


def test_features_are_the_abstractor_embedding_of_the_encoder_soft_structure(features, checkpoints):
    batch = images(3, RESOLUTION)
    encoder = load_trained_module(checkpoints[0], "encoder")
    abstractor = load_trained_module(checkpoints[1], "abstractor").net
    expected = abstractor.features(encoder.soft_structure(to_model_image(batch)))
    result = features(batch)
    assert result.shape == (3, 512) and result.dtype == torch.float32
    assert torch.equal(result, expected)
    assert torch.equal(features(batch), result)  # deterministic: frozen, eval mode
    assert not any(parameter.requires_grad for parameter in features.parameters())


def test_images_of_another_size_are_read_at_the_encoder_resolution(features):
    assert features.resolution == RESOLUTION  # the encoder run's data.resolution
    large = images(2, 2 * RESOLUTION, seed=1)
    resized = F.interpolate(to_model_image(large), size=RESOLUTION, mode="bilinear", antialias=True)
    assert features.structure(large).shape[-2:] == (RESOLUTION, RESOLUTION)
    assert torch.equal(features.structure(large), features.encoder.soft_structure(resized))


def test_read_gives_goal_and_format_logits_from_the_same_structure(features):
    batch = images(4, RESOLUTION, seed=2)
    reading = features.read(batch)
    assert reading["goal"].shape == (4, 5) and reading["format"].shape == (4, 4)
    assert torch.equal(reading["goal"], features.abstractor(features.structure(batch))["goal"])


def test_swapped_checkpoints_name_the_config_key(checkpoints):
    encoder, abstractor = checkpoints
    with pytest.raises(UserError, match=r"model\.quality\.encoder_checkpoint=.*AbstractorModel"):
        DesignFeatures.from_checkpoints(abstractor, encoder)
