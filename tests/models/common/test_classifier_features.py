"""ClassifierFeatures: the penultimate activations of a trained ImageClassifierModel, read from its checkpoint at its
training resolution and normalisation, without touching the classifier's own outputs."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch
import torch.nn.functional as F

from models.cnn.module import ImageClassifierModel
from models.common.classifier_features import ClassifierFeatures, input_normalisation, last_linear
from training.toolkit.checkpoints import META_KEY, checkpoint_metadata
from training.toolkit.errors import UserError
from training.toolkit.safe_load import trust_checkpoints

NETS = {
    "small_cnn": {"_target_": "models.cnn.nets.small_cnn.SmallCNN", "num_classes": 4, "channels": [4, 8]},
    "resnet20": {"_target_": "models.cnn.nets.resnet_cifar.resnet20", "num_classes": 4},
    "densenet": {
        "_target_": "models.cnn.nets.densenet.DenseNet3",
        "depth": 7,
        "num_classes": 4,
        "growth_rate": 4,
    },
}
FEATURES = {"small_cnn": 8, "resnet20": 64, "densenet": 28}
UKIYOE_DATA = {
    "_target_": "datamodules.ukiyoe.UkiyoeDM",
    "resolution": 16,
    "input_shape": [3, 16, 16],
}


def run_config(net: str, data: dict | None = None) -> dict:
    """The resolved run config `python -m training.run` stores in a classifier's checkpoint."""
    return {
        "name": "ukiyoe_features",
        "seed": 0,
        "data": data or UKIYOE_DATA,
        "model": {
            "_target_": "models.cnn.module.ImageClassifierModel",
            "num_classes": 4,
            "input_shape": [3, 16, 16],
            "net": NETS[net],
            "optimizer": {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1},
        },
    }


def trained_classifier(net: str) -> ImageClassifierModel:
    """A classifier with non-default weights and BatchNorm statistics, so a checkpoint load is visible."""
    torch.manual_seed(1)
    classifier = hydra.utils.instantiate(run_config(net)["model"])
    classifier.train()
    with torch.no_grad():
        classifier(torch.randn(8, 3, 16, 16) * 2 + 0.3)  # moves the BatchNorm running statistics
    return classifier.eval()


def write_checkpoint(path: Path, classifier: ImageClassifierModel, config: dict) -> Path:
    torch.save({"state_dict": classifier.state_dict(), META_KEY: checkpoint_metadata(config)}, path)
    return path


def uint8_images(count: int, size: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 3, size, size), generator=generator, dtype=torch.uint8)


def penultimate_by_hand(net_name: str, net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What each net feeds its linear head, computed without hooks."""
    if net_name == "resnet20":
        out = F.relu(net.bn1(net.conv1(x)))
        return torch.flatten(net.pool(net.layer3(net.layer2(net.layer1(out)))), 1)
    return net.features(x)


@pytest.mark.parametrize("net_name", ["small_cnn", "resnet20", "densenet"])
def test_features_are_the_heads_input_at_the_trained_resolution_and_normalisation(tmp_path, net_name):
    classifier = trained_classifier(net_name)
    path = write_checkpoint(tmp_path / "c.ckpt", classifier, run_config(net_name))
    extractor = ClassifierFeatures.from_checkpoint(path)
    images = uint8_images(5, 24)  # not the trained 16 x 16: resized on the way in

    features = extractor(images)

    assert extractor.name == "classifier:ukiyoe_features"
    assert extractor.num_features == FEATURES[net_name] == features.shape[1]
    assert features.shape == (5, FEATURES[net_name]) and features.dtype == torch.float32
    resized = F.interpolate(
        images.float(), size=(16, 16), mode="bilinear", antialias=True, align_corners=False
    )
    with torch.no_grad():
        expected = penultimate_by_hand(net_name, classifier.net, resized / 127.5 - 1)
    torch.testing.assert_close(features, expected, rtol=1e-5, atol=1e-5)


def test_the_hook_leaves_the_classifiers_logits_and_hooks_as_they_were(tmp_path):
    classifier = trained_classifier("small_cnn")
    extractor = ClassifierFeatures(classifier.net, "c", (16, 16), (0.5,) * 3, (0.5,) * 3)
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        before = classifier(x)
        extractor(uint8_images(3, 16))
        after = classifier(x)
    assert torch.equal(before, after)
    assert not last_linear(classifier.net)._forward_pre_hooks


def test_a_cnn_datamodule_run_is_read_with_its_dataset_statistics(tmp_path):
    data = {
        "_target_": "datamodules.cnn.ImageClassificationDM",
        "dataset": "cifar10",
        "input_shape": [3, 16, 16],
    }
    classifier = trained_classifier("small_cnn")
    extractor = ClassifierFeatures.from_checkpoint(
        write_checkpoint(tmp_path / "c.ckpt", classifier, run_config("small_cnn", data))
    )
    images = uint8_images(4, 16)
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = classifier.net.features((images.float() / 255 - mean) / std)
    torch.testing.assert_close(extractor(images), expected, rtol=1e-5, atol=1e-5)
    assert input_normalisation({"_target_": data["_target_"], "dataset": "procedural"}, "x") == (
        (0.5,) * 3,
        (0.225,) * 3,
    )


def test_unsupported_data_and_grayscale_classifiers_are_refused_by_name():
    with pytest.raises(UserError, match=r"ck=p: .*data `datamodules\.design\.X`.*experiment=ukiyoe_features"):
        input_normalisation({"_target_": "datamodules.design.X", "input_shape": [3, 8, 8]}, "ck=p")
    with pytest.raises(UserError, match=r"ck=p: the classifier reads 1-channel images"):
        input_normalisation(
            {"_target_": "datamodules.cnn.ImageClassificationDM", "input_shape": [1, 8, 8]}, "ck=p"
        )


def test_a_checkpoint_of_another_module_names_the_key(tmp_path):
    config = {
        "name": "other",
        "data": UKIYOE_DATA,
        "model": {"_target_": "tests.models.common.test_classifier_features.Other"},
    }
    path = tmp_path / "o.ckpt"
    torch.save({"state_dict": {}, META_KEY: checkpoint_metadata(config)}, path)
    # trusted: the test's own module is outside the packages a stored config may name
    with (
        trust_checkpoints(True),
        pytest.raises(UserError, match=r"features_checkpoint=.*not an image classifier"),
    ):
        ClassifierFeatures.from_checkpoint(path)


class Other(torch.nn.Module):
    pass
