"""Abstractor network: head shapes and ranges, both stems, ImageNet weights adapted to the structure input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import resnet18 as torchvision_resnet18

from models.design.nets.abstractor import (
    IMAGENET_WEIGHTS_URL,
    LAYOUT_STATISTICS,
    Abstractor,
    adapt_first_conv,
    mean_over,
    role_masks,
    symlog,
)
from models.design.schema import FORMATS, GOALS, GRAMMAR_NAMES, STRUCTURE_CHANNELS, TONE_AXES
from training.toolkit.errors import UserError


@pytest.fixture
def imagenet_like_weights(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A torchvision ResNet-18 state dict (random weights, non-trivial BN statistics) saved as a .pth."""
    torch.manual_seed(1)
    state = torchvision_resnet18(weights=None).state_dict()
    for name, value in state.items():
        if name.endswith(("running_mean", "running_var", "bias")):
            state[name] = torch.rand_like(value) + 0.5
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(state, path)
    return path, state


@pytest.mark.parametrize(("stem", "body_input_size"), [("imagenet", 8), ("cifar", 32)])
def test_heads_have_schema_sizes_and_bounded_scores(stem: str, body_input_size: int) -> None:
    torch.manual_seed(0)
    net = Abstractor(stem=stem, head_hidden=32).eval()
    structure = torch.rand(3, STRUCTURE_CHANNELS, 32, 32)
    with torch.no_grad():
        out = net(structure)
        features = net.features(structure)
        stem_output = net.body.maxpool(net.body.relu(net.body.bn1(net.body.conv1(structure))))

    assert out["goal"].shape == (3, len(GOALS))
    assert out["format"].shape == (3, len(FORMATS))
    assert out["tone"].shape == (3, len(TONE_AXES))
    assert out["grammar"].shape == (3, len(GRAMMAR_NAMES))
    for bounded in (out["tone"], out["grammar"]):
        assert bounded.min() > 0.0 and bounded.max() < 1.0
    assert features.shape == (3, 512) and features.min() >= 0.0  # FC-512 after ReLU
    assert stem_output.shape[-1] == body_input_size  # imagenet: /4 before the first block; cifar: /1


def test_first_conv_adaptation_is_the_scaled_rgb_mean() -> None:
    rgb = torch.tensor([1.0, 2.0, 6.0]).reshape(1, 3, 1, 1)
    adapted = adapt_first_conv(rgb, in_channels=6)
    torch.testing.assert_close(adapted, torch.full((1, 6, 1, 1), 3.0 * 3.0 / 6.0))


def test_imagenet_weights_load_strictly_with_adapted_first_conv(imagenet_like_weights) -> None:
    path, state = imagenet_like_weights
    net = Abstractor(pretrained="imagenet", weights_path=str(path))

    torch.testing.assert_close(
        net.body.conv1.weight,
        state["conv1.weight"].mean(1, keepdim=True).expand(-1, STRUCTURE_CHANNELS, -1, -1)
        * (3.0 / STRUCTURE_CHANNELS),
    )
    body = net.body.state_dict()
    assert set(body) == set(state) - {"fc.weight", "fc.bias"}
    for name in ("layer4.1.conv2.weight", "layer2.0.downsample.1.running_var", "bn1.bias"):
        torch.testing.assert_close(body[name], state[name])

    # A structure whose channels all hold the same grey image g: the adapted conv answers exactly as the
    # pretrained conv does to the RGB image (g, g, g).
    grey = torch.rand(2, 1, 24, 24)
    adapted = net.body.conv1(grey.expand(-1, STRUCTURE_CHANNELS, -1, -1))
    original = F.conv2d(grey.expand(-1, 3, -1, -1), state["conv1.weight"], stride=2, padding=3)
    torch.testing.assert_close(adapted, original, rtol=1e-4, atol=1e-5)


def test_cifar_stem_keeps_its_own_first_conv_and_loads_the_rest(imagenet_like_weights) -> None:
    path, state = imagenet_like_weights
    torch.manual_seed(3)
    net = Abstractor(stem="cifar", pretrained="imagenet", weights_path=str(path))
    assert net.body.conv1.weight.shape == (64, STRUCTURE_CHANNELS, 3, 3)
    torch.testing.assert_close(net.body.state_dict()["layer3.0.conv1.weight"], state["layer3.0.conv1.weight"])


def test_missing_imagenet_weights_name_the_key_the_url_and_the_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    expected_cache = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(UserError) as default_missing:
        Abstractor(pretrained="imagenet")
    message = str(default_missing.value)
    assert "model.net.weights_path" in message and IMAGENET_WEIGHTS_URL in message
    assert str(expected_cache) in message and "model.net.pretrained=null" in message

    with pytest.raises(UserError, match=r"model\.net\.weights_path=.*nowhere\.pth does not exist"):
        Abstractor(pretrained="imagenet", weights_path=str(tmp_path / "nowhere.pth"))


def test_weights_that_are_not_a_resnet18_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "head.weight": torch.zeros(2)}, path)
    with pytest.raises(UserError, match="does not hold torchvision ResNet-18 weights"):
        Abstractor(pretrained="imagenet", weights_path=str(path))


def test_unknown_stem_or_pretrained_source_is_a_user_error() -> None:
    with pytest.raises(UserError, match="model.net.stem='vit'"):
        Abstractor(stem="vit")
    with pytest.raises(UserError, match="model.net.pretrained='laion'"):
        Abstractor(pretrained="laion")


def test_input_size_reads_the_area_averaged_structure() -> None:
    torch.manual_seed(0)
    reduced = Abstractor(input_size=16).eval()
    full = Abstractor().eval()
    full.load_state_dict(reduced.state_dict())
    structure = torch.rand(2, STRUCTURE_CHANNELS, 32, 32)
    averaged = F.avg_pool2d(structure, 2)  # area-averaging 32 -> 16 is the 2x2 mean
    with torch.no_grad():
        assert torch.allclose(reduced.features(structure), full.features(averaged), atol=1e-6)
        assert torch.equal(reduced.features(averaged), full.features(averaged))


def test_space_to_depth_keeps_what_area_averaging_loses() -> None:
    """A text stroke one pixel left or right inside a 2x2 block: the same area average, but the folded
    reading (the body at half the side) still tells them apart."""
    left, right = torch.zeros(2, 1, STRUCTURE_CHANNELS, 32, 32)
    left[0, :, :, 10], right[0, :, :, 11] = 1.0, 1.0
    torch.manual_seed(0)
    averaged, folded = Abstractor(input_size=16).eval(), Abstractor(space_to_depth=2).eval()
    assert folded.body.conv1.in_channels == 4 * STRUCTURE_CHANNELS
    with torch.no_grad():
        assert torch.equal(averaged.features(left), averaged.features(right))
        assert not torch.allclose(folded.features(left), folded.features(right))
        assert folded(left)["grammar"].shape == (1, len(GRAMMAR_NAMES))


def test_role_masks_split_the_text_ink_by_the_hierarchy_channel() -> None:
    structure = torch.zeros(1, STRUCTURE_CHANNELS, 2, 3)
    structure[0, 0] = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0]])  # text ink, one pixel without
    structure[0, 2] = torch.tensor([[1.0, 0.8, 0.4], [0.6, 1.0, 0.0]])  # headline, subhead, body, image
    masks = role_masks(structure)[0]
    assert torch.equal(masks[0], torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))  # headline
    assert torch.equal(masks[1], torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))  # subhead
    assert torch.equal(masks[2], torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]))  # body


def test_mean_over_averages_feature_maps_over_each_mask_and_gives_zero_for_an_empty_one() -> None:
    maps = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    masks = torch.zeros(1, 2, 8, 8)  # at twice the maps' side: area-resized to them
    masks[0, 0, :4, :4] = 1.0  # the maps' top-left 2 x 2
    pooled = mean_over(maps, masks)
    assert pooled.shape == (1, 2 * 2)
    assert torch.equal(pooled[0, :2], maps[0, :, :2, :2].mean((1, 2)))
    assert torch.equal(pooled[0, 2:], torch.zeros(2))
    assert Abstractor(role_pooling=True).embedding[0].in_features == 512 + 3 * (64 + 128)


def test_layout_statistics_enter_the_embedding_standardised() -> None:
    """`layout_statistics=True` appends the measured layout (batch-normalised) to the pooled features."""
    net = Abstractor(layout_statistics=True).eval()
    assert net.embedding[0].in_features == 512 + LAYOUT_STATISTICS
    structure = torch.zeros(2, STRUCTURE_CHANNELS, 64, 64)
    structure[:, 0, 10:14, 8:40] = 1.0  # a headline line
    structure[:, 2, 10:14, 8:40] = 1.0
    out = net(structure)
    assert out["goal"].shape == (2, len(GOALS)) and torch.isfinite(out["grammar"]).all()


def test_log_statistics_add_each_statistic_on_a_symmetric_log_scale() -> None:
    """`log_statistics=True` doubles the statistics: each also as symlog, which keeps sign and order and
    spreads sub-pixel differences (a third of a pixel of a 128² width reads ~0.62, one pixel ~1.28)."""
    net = Abstractor(layout_statistics=True, log_statistics=True).eval()
    assert net.embedding[0].in_features == 512 + 2 * LAYOUT_STATISTICS
    values = torch.tensor([-1 / 128, 0.0, 1 / 384, 1 / 128])
    torch.testing.assert_close(
        symlog(values), torch.tensor([-1.2821, 0.0, 0.6249, 1.2821]), atol=1e-4, rtol=0
    )
    structure = torch.zeros(2, STRUCTURE_CHANNELS, 64, 64)
    structure[:, 0, 10:14, 8:40] = 1.0
    assert torch.isfinite(net(structure)["grammar"]).all()


def test_log_statistics_need_the_statistics() -> None:
    with pytest.raises(UserError, match="model.net.layout_statistics=true"):
        Abstractor(log_statistics=True)
