"""The decoder's test-time quality table: baselines from the same extractor, the untrained twin from the run
config and seed, conditioning fidelity read back by the abstractor."""

from __future__ import annotations

import re
from pathlib import Path

import hydra
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, StackDataset

from models.common.feature_extractors import installed_inception_weights
from models.common.generative_quality import QualityTable
from models.design.decoder.conditioning_fidelity import ClassifierReading
from models.design.decoder.quality import DecoderQuality
from models.design.features import DesignFeatures
from tests.models.design.stage_checkpoints import OPTIMIZER, tiny_encoder_config, write_checkpoint
from training.toolkit.checkpoints import AtomicCheckpointIO, checkpoint_metadata
from training.toolkit.errors import UserError
from training.toolkit.stage_checkpoint import load_trained_module, untrained_model

RESOLUTION = 16
DECODER_CONFIG = {
    "_target_": "models.design.decoder.module.DecoderModel",
    "resolution": RESOLUTION,
    "sample_steps": 2,
    "net": {
        "_target_": "models.design.nets.diffusion_unet.ConditionalUNet",
        "channels": 8,
        "channel_mults": [1, 2],
        "attention_levels": [1],
        "context_dim": 8,
        "heads": 2,
        "norm_groups": 4,
    },
    "meta_tokens": {"_target_": "models.design.nets.meta_tokens.MetaTokens", "dim": 8},
    "noise_scheduler": {"_target_": "diffusers.DDPMScheduler", "num_train_timesteps": 1000},
    "optimizer": OPTIMIZER,
}
ABSTRACTOR_CONFIG = {
    "_target_": "models.design.abstractor.module.AbstractorModel",
    "net": {"_target_": "models.design.nets.abstractor.Abstractor", "head_hidden": 8},
    "optimizer": OPTIMIZER,
}


class Designs(pl.LightningDataModule):
    """Blocky random uint8 images (4x4 colour cells) with metadata, as the design loaders give them."""

    def __init__(self, num_train: int, num_test: int, batch_size: int) -> None:
        super().__init__()
        self.splits = {"train": self._designs(num_train, seed=0), "test": self._designs(num_test, seed=1)}
        self.batch_size = batch_size

    @staticmethod
    def _designs(count: int, seed: int) -> StackDataset:
        generator = torch.Generator().manual_seed(seed)
        cells = torch.randint(0, 256, (count, 3, 4, 4), generator=generator).byte()
        return StackDataset(
            image=cells.repeat_interleave(RESOLUTION // 4, dim=2).repeat_interleave(RESOLUTION // 4, dim=3),
            goal=torch.randint(0, 5, (count,), generator=generator),
            format=torch.randint(0, 4, (count,), generator=generator),
            tone=torch.rand(count, 2, generator=generator),
        )

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["train"], batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["test"], batch_size=self.batch_size)


@pytest.fixture(scope="module")
def stages(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("design_stages")
    return (
        write_checkpoint(folder / "encoder.ckpt", tiny_encoder_config(), seed=1),
        write_checkpoint(folder / "abstractor.ckpt", ABSTRACTOR_CONFIG, seed=2),
    )


def trainer_of_run(seed: int) -> pl.Trainer:
    """A trainer as `training.run` builds it: its checkpoint writer carries the run config."""
    metadata = checkpoint_metadata({"model": DECODER_CONFIG, "seed": seed})
    return pl.Trainer(plugins=[AtomicCheckpointIO(metadata)], logger=False, enable_checkpointing=False)


def test_the_untrained_decoder_is_the_run_config_built_under_the_run_seed():
    untrained = untrained_model(trainer_of_run(seed=7), "model.quality", quality=None)
    torch.manual_seed(7)
    at_start = hydra.utils.instantiate(DECODER_CONFIG)
    torch.manual_seed(8)
    other_seed = hydra.utils.instantiate(DECODER_CONFIG)
    assert untrained.quality is None and not untrained.training
    for name, value in at_start.state_dict().items():
        assert torch.equal(untrained.state_dict()[name], value), name
    assert not torch.equal(untrained.meta_tokens.goal.weight, other_seed.meta_tokens.goal.weight)


def test_without_a_run_config_the_untrained_baseline_names_the_key():
    with pytest.raises(
        UserError, match=r"model\.quality: the untrained-model baseline .*model\.quality=null"
    ):
        untrained_model(pl.Trainer(logger=False, enable_checkpointing=False), "model.quality")


@pytest.fixture(scope="module")
def designs() -> Designs:
    return Designs(num_train=8, num_test=8, batch_size=8)


SMALL = {"num_samples": 6, "steps": 2, "subset_size": 4, "subsets": 3}  # 6 of the 8 test designs


def table_against_twin(quality: DecoderQuality, designs: Designs) -> QualityTable:
    """`quality`'s table of a decoder against its identical twin as the "untrained" one."""
    decoder, twin = (untrained_model(trainer_of_run(seed=3), "model.quality", quality=None) for _ in range(2))
    return quality.evaluate(decoder, designs, twin)


@pytest.fixture(scope="module")
def table(stages, designs) -> QualityTable:
    return table_against_twin(DecoderQuality(*stages, feature="design", **SMALL), designs)


def test_every_set_is_measured_against_the_reference_and_placed_between_real_and_noise(table):
    sets = ("real_vs_real", "model", "untrained", "noise")
    assert {f"{metric}/{name}" for metric in ("fid", "kid", "kid_std") for name in sets} <= set(table)
    assert table["fid/real_vs_real"] < table["fid/noise"]
    relative = (table["fid/model"] - table["fid/real_vs_real"]) / (
        table["fid/noise"] - table["fid/real_vs_real"]
    )
    assert table["fid_relative/model"] == pytest.approx(relative)


def test_the_table_names_its_extractor_with_a_hash_of_its_weights(table, stages):
    assert table.features == DesignFeatures.from_checkpoints(*stages).identity
    assert re.fullmatch(r"design \(weights sha1 [0-9a-f]{8}\)", table.features)


def test_identical_decoders_from_the_same_noise_give_identical_numbers(table):
    for key in ("fid", "kid", "fid_relative", "conditioning/goal", "conditioning/format"):
        assert table[f"{key}/model"] == table[f"{key}/untrained"]


def test_real_fidelity_is_the_abstractor_reading_of_the_first_num_samples_test_images(table, stages, designs):
    first = next(iter(DataLoader(designs.splits["test"], batch_size=6)))
    reading = DesignFeatures.from_checkpoints(*stages).read(first["image"])
    for field in ("goal", "format"):
        expected = (reading[field].argmax(1) == first[field]).double().mean().item()
        assert table[f"conditioning/{field}/real"] == pytest.approx(expected)


def test_with_a_feature_cache_the_table_is_the_same_and_each_distinct_set_is_stored_once(
    table, stages, designs, tmp_path
):
    quality = DecoderQuality(*stages, feature="design", feature_cache=tmp_path, **SMALL)
    assert dict(table_against_twin(quality, designs)) == dict(table)
    # reference, real-vs-real, noise and the samples (the twin draws the same pixels, so one file for both)
    assert len(list(tmp_path.rglob("*.npy"))) == 4


def test_the_design_features_without_stage_checkpoints_measure_nothing_and_the_warning_names_the_key(caplog):
    with caplog.at_level("WARNING"):
        assert DecoderQuality(encoder_checkpoint="encoder.ckpt", feature="design")(module=None) == {}
    assert "model.quality.abstractor_checkpoint not set" in caplog.text


@pytest.mark.skipif(installed_inception_weights() is None, reason="the Inception weights are not installed")
def test_inception_without_stage_checkpoints_measures_fid_and_kid_but_not_fidelity(designs):
    table = table_against_twin(DecoderQuality(feature="inception", **SMALL), designs)
    sets = ("real_vs_real", "model", "untrained", "noise")
    assert {f"{metric}/{name}" for metric in ("fid", "kid") for name in sets} <= set(table)
    assert not any(key.startswith("conditioning/") for key in table)
    assert table.features.startswith("inception-v3-fid")
    assert table["fid/real_vs_real"] < table["fid/noise"]


READER_CONFIG = {
    "_target_": "models.cnn.module.ImageClassifierModel",
    "num_classes": 20,
    "net": {"_target_": "models.cnn.nets.small_cnn.SmallCNN", "num_classes": 20, "channels": [4, 8]},
    "optimizer": OPTIMIZER,
}
READER_DATA = {"_target_": "datamodules.design.DesignDM", "resolution": 8, "label": "goal_format"}


@pytest.fixture(scope="module")
def reader(tmp_path_factory) -> Path:
    """A joint goal/format classifier trained at 8² (the samples are 16²: it reads them resized)."""
    return write_checkpoint(tmp_path_factory.mktemp("reader") / "reader.ckpt", READER_CONFIG, 4, READER_DATA)


def test_the_pixel_classifier_reads_goal_and_format_as_its_joint_classes_marginals(stages, designs, reader):
    quality = DecoderQuality(*stages, reader_checkpoint=str(reader), feature="design", **SMALL)
    table = table_against_twin(quality, designs)
    first = next(iter(DataLoader(designs.splits["test"], batch_size=6)))
    classifier = load_trained_module(reader, "reader")
    pixels = torch.nn.functional.interpolate(
        first["image"].float() / 255, size=(8, 8), mode="bilinear", antialias=True
    )
    joint = (
        classifier(pixels * 2 - 1).view(6, 5, 4).softmax(dim=2).sum(dim=2)
    )  # p(goal, format) summed over format
    goal_hits = (joint.argmax(dim=1) == first["goal"]).double().mean().item()
    assert table["conditioning_classifier/goal/real"] == pytest.approx(goal_hits)
    for field in ("goal", "format"):
        for name in ("model", "untrained", "real"):
            assert 0 <= table[f"conditioning_classifier/{field}/{name}"] <= 1
        assert (
            table[f"conditioning_classifier/{field}/model"]
            == table[f"conditioning_classifier/{field}/untrained"]
        )
    assert "conditioning/goal/real" in table  # the abstractor still reads beside it


def test_a_classifier_of_other_data_is_refused_as_a_reader_naming_the_key(tmp_path):
    other = write_checkpoint(
        tmp_path / "prints.ckpt", READER_CONFIG, 4, {"_target_": "datamodules.ukiyoe.UkiyoeDM"}
    )
    with pytest.raises(UserError, match=r"model\.quality\.reader_checkpoint=.*experiment=design_reader"):
        ClassifierReading.from_checkpoint(other, "model.quality.reader_checkpoint")
