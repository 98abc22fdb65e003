"""DesignDM: batch layout, device-side image conversion, disjoint splits, seeded resumable order."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from datamodules.design import DesignDM
from datamodules.loading import ResumableLoader
from models.design.schema import F_CHANNELS, NUM_COLOR_IDS, to_model_image
from tests.helpers import compose_config
from training.toolkit.errors import UserError


def _datamodule(**overrides) -> DesignDM:
    options = dict(resolution=32, num_train=12, num_val=6, num_test=4, batch_size=4, storage="memory", seed=3)
    datamodule = DesignDM(**(options | overrides))
    datamodule.setup("fit")
    return datamodule


def test_batches_have_the_schema_shapes_dtypes_and_ranges() -> None:
    datamodule = _datamodule()
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (4, 3, 32, 32)
    f_tensor = batch["f_tensor"]
    assert f_tensor.dtype == torch.float32 and f_tensor.shape == (4, F_CHANNELS, 32, 32)
    assert set(f_tensor[:, :2].unique().tolist()) <= {0.0, 1.0}
    assert f_tensor[:, 2].min() >= 0 and f_tensor[:, 2].max() < NUM_COLOR_IDS
    assert torch.equal(f_tensor[:, 2], f_tensor[:, 2].round())
    assert f_tensor[:, 3].min() >= 0 and f_tensor[:, 3].max() <= 1
    assert batch["goal"].dtype == torch.int64 and batch["goal"].shape == (4,)
    assert batch["format"].dtype == torch.int64 and batch["format"].shape == (4,)
    assert batch["tone"].dtype == torch.float32 and batch["tone"].shape == (4, 2)
    assert batch["grammar"].dtype == torch.float32 and batch["grammar"].shape == (4, 4)
    assert batch["index"].dtype == torch.int64

    moved = datamodule.on_after_batch_transfer(batch, 0)
    assert moved["image"].dtype == torch.float32
    assert moved["image"].min() >= -1 and moved["image"].max() <= 1
    assert torch.equal(moved["image"], to_model_image(batch["image"]))
    assert torch.equal(moved["f_tensor"], batch["f_tensor"])


def test_splits_are_disjoint_designs() -> None:
    datamodule = _datamodule()
    datamodule.setup("test")
    images = {
        split: {datamodule.datasets[split][i]["image"].numpy().tobytes() for i in range(4)}
        for split in ("train", "val", "test")
    }
    assert not images["train"] & images["val"] and not images["train"] & images["test"]
    assert not images["val"] & images["test"]


def test_training_order_is_fixed_by_seed_and_epoch() -> None:
    def order(datamodule: DesignDM, epoch: int) -> list[int]:
        loader = datamodule.train_dataloader()
        loader.sampler.set_epoch(epoch)
        return torch.cat([batch["index"] for batch in loader]).tolist()

    first, again = _datamodule(), _datamodule()
    assert isinstance(first.train_dataloader(), ResumableLoader)
    assert order(first, 0) == order(again, 0) != list(range(12))
    assert order(first, 1) != order(first, 0)
    assert sorted(order(first, 1)) == list(range(12))
    assert torch.cat([b["index"] for b in first.val_dataloader()]).tolist() == list(range(6))


def test_the_ordered_loader_reads_a_whole_split_in_index_order_and_leaves_training_alone() -> None:
    datamodule = _datamodule(drop_last=True, batch_size=5)  # 12 designs: training drops the short batch
    training = datamodule.train_dataloader()
    position = training.state_dict()
    ordered = torch.cat([batch["index"] for batch in datamodule.ordered_dataloader("train")])
    assert ordered.tolist() == list(range(12))
    assert training.state_dict() == position
    fresh = DesignDM(resolution=32, num_train=12, num_val=6, num_test=4, storage="memory", seed=3)
    assert len(fresh.ordered_dataloader("test").dataset) == 4  # opens the split it is asked for


def test_prepare_data_renders_shards_that_setup_reads(tmp_path) -> None:
    datamodule = DesignDM(
        resolution=32, num_train=5, num_val=2, num_test=2, batch_size=2, data_dir=str(tmp_path), seed=1
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    memory = _datamodule(num_train=5, num_val=2, num_test=2, batch_size=2, seed=1)
    for i in range(5):
        assert torch.equal(datamodule.datasets["train"][i]["image"], memory.datasets["train"][i]["image"])


def test_config_file_builds_the_datamodule(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VISIONCORE_ROOT", str(tmp_path))
    config = compose_config(["data=design", "data.resolution=32", "seed=7"])
    datamodule = instantiate(config.data)
    assert isinstance(datamodule, DesignDM)
    assert datamodule.config.seed == 7 and datamodule.hparams.storage == "shards"
    assert datamodule.hparams.data_dir == f"{tmp_path}/data"


def test_bad_storage_is_a_user_error() -> None:
    with pytest.raises(UserError, match="data.storage"):
        DesignDM(storage="disk")


def test_training_resumes_mid_epoch_with_the_unseen_batches() -> None:
    full = [batch["index"].tolist() for batch in _datamodule().train_dataloader()]
    interrupted = _datamodule().train_dataloader()
    iterator = iter(interrupted)
    seen = [next(iterator)["index"].tolist() for _ in range(1)]
    resumed = _datamodule().train_dataloader()
    resumed.load_state_dict(interrupted.state_dict())
    assert seen + [batch["index"].tolist() for batch in resumed] == full


def test_an_empty_validation_split_in_memory_turns_validation_off(tmp_path):
    data = DesignDM(resolution=16, num_train=4, num_val=0, num_test=2, batch_size=2, storage="memory")
    data.setup("fit")
    assert len(data.datasets["val"]) == 0 and data.val_dataloader() == []


def test_with_a_label_batches_are_a_classifiers_images_and_classes() -> None:
    datamodule = _datamodule(label="goal_format", num_classes=20, input_shape=[3, 32, 32])
    batch = next(iter(datamodule.train_dataloader()))
    images, labels = datamodule.on_after_batch_transfer(batch, 0)
    assert torch.equal(images, to_model_image(batch["image"]))
    assert torch.equal(labels, batch["goal"] * 4 + batch["format"])
    assert labels.dtype == torch.int64
    example = torch.zeros(1, 3, 32, 32)  # a classifier's example input (model summary) passes as it is
    assert datamodule.on_after_batch_transfer(example, 0) is example
    mean, std = DesignDM.pixel_normalisation({})
    pixels = batch["image"].float() / 255
    normalised = (pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(normalised, images, atol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"label": "tone"}, r"data\.label='tone'.*goal, format, goal_format"),
        ({"label": "goal", "num_classes": 20}, r"data\.num_classes=20 but data\.label=goal has 5 classes"),
        ({"label": "goal", "input_shape": [3, 64, 64]}, r"data\.input_shape=\[3, 64, 64\] must be"),
    ],
)
def test_a_bad_classifier_setting_names_the_key(options, message) -> None:
    with pytest.raises(UserError, match=message):
        DesignDM(resolution=32, storage="memory", **options)
