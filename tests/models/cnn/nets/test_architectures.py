"""CNN architectures: exact parameter counts against the papers, output shapes, argument validation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from models.cnn.nets import (
    CifarResNet,
    DenseNet3,
    SmallCNN,
    densenet40_k12,
    densenet_bc100_k12,
    resnet20,
    resnet32,
    resnet44,
    resnet56,
    resnet110,
)
from models.cnn.nets.resnet18 import resnet18
from tests.helpers import CONF_DIR

MODEL_CONFIG_DIR = CONF_DIR / "model"


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


# He et al.'s CIFAR ResNets use option-A (zero-padding) shortcuts; these are their exact sizes.
RESNET_OPTION_A_PARAMETERS = {
    resnet20: 269_722,
    resnet32: 464_154,
    resnet44: 658_586,
    resnet56: 853_018,
    resnet110: 1_727_962,
}
# Projection (option-B) shortcuts at the two down-sampling blocks add 2 x (1x1 conv + BN) = 2,752.
RESNET_OPTION_B_PARAMETERS = {
    resnet20: 272_474,
    resnet32: 466_906,
    resnet44: 661_338,
    resnet56: 855_770,
    resnet110: 1_730_714,
}


@pytest.mark.parametrize(
    ("factory", "expected"), RESNET_OPTION_A_PARAMETERS.items(), ids=lambda v: getattr(v, "__name__", str(v))
)
def test_cifar_resnet_option_a_parameter_count_is_exact(factory: Callable, expected: int) -> None:
    assert count_parameters(factory(num_classes=10)) == expected


@pytest.mark.parametrize(
    ("factory", "expected"), RESNET_OPTION_B_PARAMETERS.items(), ids=lambda v: getattr(v, "__name__", str(v))
)
def test_cifar_resnet_option_b_parameter_count_is_exact(factory: Callable, expected: int) -> None:
    assert count_parameters(factory(num_classes=10, shortcut="B")) == expected


def test_densenet_bc100_k12_matches_the_published_769162_parameters() -> None:
    assert count_parameters(densenet_bc100_k12(num_classes=10)) == 769_162


def test_densenet40_k12_has_the_papers_one_million_parameters() -> None:
    count = count_parameters(densenet40_k12(num_classes=10))
    assert count == 1_019_722  # pinned: 16-channel stem, 12 layers/block, no compression
    assert 1.0e6 <= count <= 1.06e6  # the paper's "1.0M"


def test_resnet18_cifar_stem_parameter_count_is_exact() -> None:
    model = resnet18(num_classes=10)
    assert count_parameters(model) == 11_173_962
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)


SMALL_NETWORKS = {
    "densenet_tiny": lambda c, k: DenseNet3(10, num_classes=k, growth_rate=4, in_channels=c),
    "densenet_bc_tiny": lambda c, k: DenseNet3(
        16, num_classes=k, growth_rate=4, reduction=0.5, bottleneck=True, in_channels=c
    ),
    "densenet40_k12": lambda c, k: densenet40_k12(num_classes=k, in_channels=c),
    "resnet20": lambda c, k: resnet20(num_classes=k, in_channels=c),
    "resnet20_b": lambda c, k: resnet20(num_classes=k, in_channels=c, shortcut="B"),
    "resnet18": lambda c, k: resnet18(num_classes=k, in_channels=c),
    "small_cnn": lambda c, k: SmallCNN(num_classes=k, in_channels=c),
}


@pytest.mark.parametrize("name", SMALL_NETWORKS)
@pytest.mark.parametrize(("in_channels", "size"), [(3, 32), (1, 28)])
def test_networks_map_images_to_logits(name: str, in_channels: int, size: int) -> None:
    model = SMALL_NETWORKS[name](in_channels, 7).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, in_channels, size, size))
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()


def test_small_cnn_accepts_8x8_digits() -> None:
    assert SmallCNN(num_classes=10, in_channels=1)(torch.zeros(3, 1, 8, 8)).shape == (3, 10)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DenseNet3(41, num_classes=10), r"3n\+4.*depth=41"),
        (lambda: DenseNet3(43, num_classes=10, bottleneck=True), r"6n\+4.*depth=43"),
        (lambda: DenseNet3(4, num_classes=10), r"n >= 1.*depth=4"),
        (lambda: CifarResNet(21), r"6n\+2.*depth=21"),
        (lambda: CifarResNet(2), r"6n\+2.*depth=2"),
    ],
)
def test_invalid_depth_raises_a_clear_error(build: Callable[[], nn.Module], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_invalid_shortcut_and_reduction_are_rejected() -> None:
    with pytest.raises(ValueError, match="shortcut.*'C'"):
        CifarResNet(20, shortcut="C")
    with pytest.raises(ValueError, match="reduction"):
        DenseNet3(40, num_classes=10, reduction=0.0)


def test_densenet_dropout_is_active_only_in_train_mode() -> None:
    torch.manual_seed(0)
    images = torch.randn(4, 3, 16, 16)
    model = DenseNet3(10, num_classes=5, growth_rate=4, drop_rate=0.5)

    model.eval()
    with torch.no_grad():
        assert torch.equal(model(images), model(images))

    model.train()  # BatchNorm uses batch statistics here, which are deterministic: only dropout varies.
    with torch.no_grad():
        assert not torch.allclose(model(images), model(images))

    without_dropout = DenseNet3(10, num_classes=5, growth_rate=4, drop_rate=0.0).train()
    with torch.no_grad():
        assert torch.equal(without_dropout(images), without_dropout(images))


def test_small_cnn_learns_sklearn_digits_quickly() -> None:
    datasets = pytest.importorskip("sklearn.datasets")
    # One intra-op thread: tiny 8x8 convolutions gain nothing from more, and suffer on a shared CPU.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        digits = datasets.load_digits()
        images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        accuracy = _train_small_cnn_on_digits(images, torch.tensor(digits.target))
    finally:
        torch.set_num_threads(threads)
    assert accuracy >= 0.95


def _train_small_cnn_on_digits(images: torch.Tensor, labels: torch.Tensor) -> float:
    """Six epochs of AdamW on 1,400 digits; returns accuracy on the 397 held-out ones."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(labels), generator=generator)
    train_index, test_index = order[:1400], order[1400:]

    model = SmallCNN(num_classes=10, in_channels=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(6):
        model.train()
        for batch in train_index[torch.randperm(len(train_index), generator=generator)].split(64):
            loss = F.cross_entropy(model(images[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        return (model(images[test_index]).argmax(1) == labels[test_index]).float().mean().item()


MODEL_CONFIG_PARAMETERS = {
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
    "densenet40": 1_019_722,
    "densenet_bc100": 769_162,
    "resnet18": 11_173_962,
    "small_cnn": None,
}


@pytest.mark.parametrize("name", MODEL_CONFIG_PARAMETERS)
def test_model_config_builds_the_documented_network(name: str) -> None:
    input_shape = [1, 8, 8] if name == "small_cnn" else [3, 32, 32]
    data = {"num_classes": 10, "input_shape": input_shape, "class_names": [f"c{i}" for i in range(10)]}
    config = OmegaConf.create({"data": data, "model": OmegaConf.load(MODEL_CONFIG_DIR / f"{name}.yaml")})
    classifier = instantiate(config.model)

    expected = MODEL_CONFIG_PARAMETERS[name]
    if expected is not None:
        assert count_parameters(classifier.net) == expected
    assert classifier.example_input_array.shape == (1, *input_shape)
    optimizer = classifier.optimizer_factory(classifier.parameters())
    assert optimizer.param_groups[0]["lr"] > 0
    assert "scheduler" in classifier.lr_schedule
