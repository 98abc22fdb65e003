"""UkiyoeQuality: FID/KID of the GAN's EMA samples beside real-vs-real, noise and the untrained generator, all
of one size N and read by the offline prints classifier; a clear skip while that classifier is not given."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import hydra
import pytest
import torch
from torch import nn

from models.common import feature_extractors
from models.ukiyoe.quality import UkiyoeQuality
from training.toolkit.checkpoints import META_KEY, checkpoint_metadata
from training.toolkit.errors import UserError

SIZE = 16
PALETTE = torch.tensor([[30, 50, 120], [200, 60, 40], [220, 170, 80], [20, 20, 20], [240, 235, 220]])


def band_prints(latents: torch.Tensor) -> torch.Tensor:
    """uint8 "prints" (B, 3, SIZE, SIZE): two palette colours split by a horizon row, chosen by `latents`
    (B, 3) in [0, 1): the fake real data, and what the trained fake generator draws."""
    top, bottom = (latents[:, :2] * len(PALETTE)).long().unbind(1)
    horizon = 4 + (latents[:, 2] * 9).long()
    rows = torch.arange(SIZE).view(1, SIZE, 1)
    above = (rows < horizon.view(-1, 1, 1)).unsqueeze(1)  # (B, 1, SIZE, 1)
    image = torch.where(above, PALETTE[top].view(-1, 3, 1, 1), PALETTE[bottom].view(-1, 3, 1, 1))
    return image.expand(-1, 3, SIZE, SIZE).to(torch.uint8)


class FakeGenerator(nn.Module):
    """Trained: band prints from z; untrained: near-uniform grey. Counts the latents it is given."""

    def __init__(self, trained: bool) -> None:
        super().__init__()
        self.trained = trained
        self.drawn = 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.drawn += z.shape[0]
        if self.trained:
            return band_prints(z)
        return (120 + 20 * z[:, :1, None, None]).expand(-1, 3, SIZE, SIZE).to(torch.uint8)


class FakeDataModule:
    """UkiyoeDM's FID interface: `datasets` (filled by setup) and `uint8_batches`, over fixed train (40)
    and test (30) sets of band prints."""

    resolution = SIZE

    def __init__(self) -> None:
        self.prints = {
            "train": band_prints(torch.rand(40, 3, generator=torch.Generator().manual_seed(1))),
            "test": band_prints(torch.rand(30, 3, generator=torch.Generator().manual_seed(2))),
        }
        self.datasets: dict[str, torch.Tensor] = {}
        self.requested: list[tuple[str, int]] = []

    def setup(self, stage: str | None = None) -> None:
        self.datasets = self.prints

    def uint8_batches(self, split: str, count: int, batch_size: int) -> Iterator[torch.Tensor]:
        assert count <= len(self.datasets[split]), "the real datamodule refuses more images than it has"
        self.requested.append((split, count))
        yield from self.datasets[split][:count].split(batch_size)


class FakeGAN:
    """The GAN module's interface UkiyoeQuality codes against."""

    device = torch.device("cpu")

    def __init__(self) -> None:
        self.trainer = SimpleNamespace(datamodule=FakeDataModule())
        self.ema = FakeGenerator(trained=True)
        self.built: list[FakeGenerator] = []

    def build_generator(self) -> FakeGenerator:
        self.built.append(FakeGenerator(trained=False))
        return self.built[-1]

    def sample_uint8(self, num: int, seed: int, generator: nn.Module | None = None) -> Iterator[torch.Tensor]:
        latents = torch.rand(num, 3, generator=torch.Generator().manual_seed(seed))
        for z in latents.split(8):
            yield (generator or self.ema)(z)


@pytest.fixture(scope="module")
def features_checkpoint(tmp_path_factory) -> Path:
    """A small_cnn ImageClassifierModel checkpoint trained (here: initialised) on 16 x 16 ukiyoe data."""
    config = {
        "name": "ukiyoe_features",
        "data": {"_target_": "datamodules.ukiyoe.UkiyoeDM", "input_shape": [3, SIZE, SIZE]},
        "model": {
            "_target_": "models.cnn.module.ImageClassifierModel",
            "num_classes": 3,
            "net": {"_target_": "models.cnn.nets.small_cnn.SmallCNN", "num_classes": 3, "channels": [8, 16]},
            "optimizer": {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1},
        },
    }
    torch.manual_seed(0)
    classifier = hydra.utils.instantiate(config["model"])
    path = tmp_path_factory.mktemp("features") / "classifier.ckpt"
    torch.save({"state_dict": classifier.state_dict(), META_KEY: checkpoint_metadata(config)}, path)
    return path


def test_the_model_is_measured_beside_its_baselines_on_sets_of_equal_size(features_checkpoint):
    gan = FakeGAN()
    quality = UkiyoeQuality(
        features_checkpoint=str(features_checkpoint),
        feature="prints",
        num_samples=48,
        subset_size=20,
        subsets=5,
    )

    table = quality(gan)

    assert re.fullmatch(r"classifier:ukiyoe_features \(weights sha1 [0-9a-f]{8}\)", table.features)
    sets = ("real_vs_real", "model", "untrained", "noise")
    assert set(table) == {f"{metric}/{name}" for metric in ("fid", "kid", "kid_std") for name in sets} | {
        f"{metric}_relative/{name}" for metric in ("fid", "kid") for name in ("model", "untrained")
    }
    # N = min(num_samples 48, train 40, test 30) for every set, the generators' included.
    assert ("train", 30) in gan.trainer.datamodule.requested and (
        "test",
        30,
    ) in gan.trainer.datamodule.requested
    assert gan.ema.drawn == 30
    (untrained,) = gan.built  # the untrained twin comes from build_generator, and its samples are measured
    assert untrained.drawn == 30
    for metric in ("fid", "kid"):
        real, model, noise = (table[f"{metric}/{name}"] for name in ("real_vs_real", "model", "noise"))
        assert abs(model - real) < abs(model - noise)
        assert table[f"{metric}_relative/model"] < 0.5 * table[f"{metric}_relative/untrained"]
    assert (
        table["fid/real_vs_real"] < table["fid/untrained"] and table["fid/real_vs_real"] < table["fid/noise"]
    )


def test_without_baselines_only_the_model_is_measured_and_no_generator_is_built(features_checkpoint):
    gan = FakeGAN()
    options = {"features_checkpoint": str(features_checkpoint), "feature": "prints", "num_samples": 48}
    options |= {"subset_size": 20, "subsets": 5}
    full = UkiyoeQuality(**options)(FakeGAN())
    table = UkiyoeQuality(**options)(gan, baselines=False)

    assert set(table) == {"fid/model", "kid/model", "kid_std/model"}
    assert table["fid/model"] == pytest.approx(full["fid/model"], rel=1e-6)
    assert gan.built == [] and gan.trainer.datamodule.requested == [("train", 30)]


def test_without_the_prints_extractor_it_warns_how_to_get_one_and_measures_nothing(caplog):
    with caplog.at_level(logging.WARNING):
        assert UkiyoeQuality(feature="prints")(object()) == {}  # the module is not touched
    assert "model.quality.features_checkpoint is not set" in caplog.text
    assert "experiment=ukiyoe_features" in caplog.text and "make install" in caplog.text


def test_auto_without_inception_falls_back_to_the_prints_extractor_and_says_why(monkeypatch, caplog):
    monkeypatch.setattr(feature_extractors, "installed_inception_weights", lambda: None)
    with caplog.at_level(logging.WARNING):
        assert UkiyoeQuality()(object()) == {}  # auto -> prints, whose checkpoint is not set
    assert "model.quality.feature=auto: prints" in caplog.text and "not installed" in caplog.text
    assert "model.quality.features_checkpoint is not set" in caplog.text


def test_auto_with_inception_installed_needs_no_prints_checkpoint(monkeypatch):
    monkeypatch.setattr(feature_extractors, "installed_inception_weights", lambda: Path("default_1.pt"))
    chosen = []
    monkeypatch.setattr(
        UkiyoeQuality, "evaluate", lambda self, module, datamodule, feature, baselines: chosen.append(feature)
    )
    UkiyoeQuality()(FakeGAN())
    assert chosen == ["inception"]


def test_inception_not_installed_names_the_key_and_how_to_install_it(monkeypatch):
    monkeypatch.setattr(feature_extractors, "installed_inception_weights", lambda: None)
    with pytest.raises(
        UserError, match=r"model\.quality\.inception_weights is unset .* not installed.*make install"
    ):
        UkiyoeQuality(feature="inception")(FakeGAN())


def test_a_missing_features_checkpoint_names_its_key(tmp_path):
    with pytest.raises(UserError, match=r"model\.quality\.features_checkpoint=.*missing\.ckpt is not a file"):
        UkiyoeQuality(features_checkpoint=str(tmp_path / "missing.ckpt"), feature="prints")(FakeGAN())


def test_an_unknown_feature_is_an_error_not_a_skip():
    with pytest.raises(UserError, match=r"model\.quality\.feature=clip is not .* auto, inception, prints"):
        UkiyoeQuality(feature="clip")(FakeGAN())
