"""UkiyoeDM: procedural and image-folder batches, held-out splits, clear errors, uint8 reference batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.device_batches import DeviceImageBatches
from datamodules.loading import ResumableLoader
from datamodules.ukiyoe import UkiyoeDM
from datamodules.ukiyoe.procedural import SCENES, render_print
from training.toolkit.errors import UserError

SMALL = {"resolution": 16, "num_train": 12, "num_val": 4, "num_test": 8, "batch_size": 4, "seed": 3}


def _procedural(tmp_path: Path, **overrides) -> UkiyoeDM:
    data = UkiyoeDM(data_dir=str(tmp_path), **{**SMALL, **overrides})
    data.prepare_data()
    data.setup()
    return data


def test_procedural_batches_are_prints_in_minus_one_to_one_with_scene_labels(tmp_path) -> None:
    data = _procedural(tmp_path, augment=True, on_device=False)
    assert (data.num_classes, data.class_names, data.resolution) == (4, list(SCENES), 16)
    loader = data.train_dataloader()
    assert isinstance(loader, ResumableLoader)
    batches = list(loader)
    assert len(batches) == 3
    images, labels = batches[0]
    assert images.shape == (4, 3, 16, 16) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and labels.shape == (4,)
    assert images.min() >= -1 and images.max() <= 1
    assert sorted(torch.cat([b[1] for b in batches]).tolist()) == sorted([0, 1, 2, 3] * 3)
    test_images, test_labels = next(iter(data.test_dataloader()))
    expected, label = render_print(0, 16, seed=3, split="test")
    assert torch.allclose(test_images[0], torch.from_numpy(expected).permute(2, 0, 1) / 127.5 - 1)
    assert test_labels[0] == label


def test_training_split_on_the_device_gives_the_file_loaders_batches(tmp_path) -> None:
    """on_device (the default): the same batches, in the same order, as reading the files, and the flips
    are whole-image mirror images drawn per batch."""
    host = list(_procedural(tmp_path, on_device=False).train_dataloader())
    loader = _procedural(tmp_path).train_dataloader()
    assert isinstance(loader, DeviceImageBatches)
    device = list(loader)
    assert len(device) == len(host) == 3
    for (images, labels), (expected, expected_labels) in zip(device, host, strict=True):
        torch.testing.assert_close(images, expected, atol=1e-6, rtol=0)
        assert torch.equal(labels, expected_labels)

    flipped = list(_procedural(tmp_path, augment=True).train_dataloader())
    for (images, _), (plain, _) in zip(flipped, device, strict=True):
        same = [torch.equal(a, b) for a, b in zip(images, plain, strict=True)]
        mirrored = [torch.equal(a, b.flip(-1)) for a, b in zip(images, plain, strict=True)]
        assert all(s or m for s, m in zip(same, mirrored, strict=True))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(flipped, device, strict=True))


def test_augment_flips_training_images_only(tmp_path) -> None:
    data = _procedural(tmp_path, augment=True)
    torch.manual_seed(0)
    train = data.datasets["train"]
    first = train.uint8(0).float() / 127.5 - 1
    seen = {bool(torch.equal(train[0][0], first)) for _ in range(20)}
    assert seen == {True, False}
    assert all(torch.equal(data.datasets["test"][0][0], data.datasets["test"][0][0]) for _ in range(5))


def test_uint8_batches_yield_the_first_images_in_order(tmp_path) -> None:
    data = _procedural(tmp_path)
    batches = list(data.uint8_batches("test", 7, 3))
    assert [b.shape[0] for b in batches] == [3, 3, 1] and batches[0].dtype == torch.uint8
    stacked = torch.cat(batches)
    for index in (0, 6):
        assert np.array_equal(stacked[index].permute(1, 2, 0).numpy(), render_print(index, 16, 3, "test")[0])
    with pytest.raises(UserError, match=r"the test split has 8; raise data\.num_test"):
        list(data.uint8_batches("test", 9, 4))


def _write_images(folder: Path, count: int, size: tuple[int, int], colour: tuple[int, int, int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", size, colour).save(folder / f"{i:03d}.png")


def test_a_folder_with_class_sub_folders(tmp_path) -> None:
    _write_images(tmp_path / "train" / "bijin", 10, (40, 24), (255, 0, 0))
    _write_images(tmp_path / "train" / "fuji", 10, (24, 40), (0, 0, 255))
    _write_images(tmp_path / "test" / "bijin", 3, (30, 30), (255, 0, 0))
    _write_images(tmp_path / "test" / "fuji", 2, (30, 30), (0, 0, 255))
    folder = {"train": str(tmp_path / "train"), "test": str(tmp_path / "test")}
    data = UkiyoeDM(source="image_folder", image_folder=folder, resolution=16, batch_size=4, num_classes=2)
    data.prepare_data()
    data.setup()
    assert data.class_names == ["bijin", "fuji"]
    assert [len(data.datasets[s]) for s in ("train", "val", "test")] == [18, 2, 5]
    images, labels = next(iter(data.test_dataloader()))
    assert images.shape == (4, 3, 16, 16)  # resized (shorter side) and centre-cropped
    red = images[labels == 0]
    assert torch.allclose(red[:, 0], torch.ones(())) and torch.allclose(red[:, 2], -torch.ones(()))


def test_a_flat_folder_is_one_class_with_a_fixed_held_out_split(tmp_path) -> None:
    _write_images(tmp_path / "prints", 20, (20, 20), (10, 200, 30))
    folder = {"train": str(tmp_path / "prints")}

    def splits() -> dict[str, list[str]]:
        data = UkiyoeDM(source="image_folder", image_folder=folder, resolution=8, num_classes=1)
        data.setup()
        assert data.class_names == ["prints"]
        return {split: [p for p, _ in data.datasets[split].samples] for split in ("train", "val", "test")}

    first = splits()
    assert [len(first[s]) for s in ("train", "val", "test")] == [14, 2, 4]
    assert not set(first["train"]) & set(first["test"]) and splits() == first


def test_a_missing_or_empty_folder_names_the_key_and_the_fix(tmp_path) -> None:
    for root in (None, str(tmp_path / "nowhere")):
        data = UkiyoeDM(source="image_folder", image_folder={"train": root})
        with pytest.raises(
            UserError, match=r"data\.image_folder\.train=.* is not an existing folder.*sub-folder"
        ):
            data.setup()
    (tmp_path / "empty").mkdir()
    data = UkiyoeDM(source="image_folder", image_folder={"train": str(tmp_path / "empty")})
    with pytest.raises(UserError, match=r"data\.image_folder\.train=.*holds no images"):
        data.setup()


def test_a_wrong_num_classes_or_source_is_a_user_error(tmp_path) -> None:
    _write_images(tmp_path / "prints", 10, (8, 8), (0, 0, 0))
    data = UkiyoeDM(source="image_folder", image_folder={"train": str(tmp_path / "prints")}, num_classes=4)
    with pytest.raises(UserError, match="set data.num_classes=1"):
        data.setup()
    with pytest.raises(UserError, match="data.source='photos'"):
        UkiyoeDM(source="photos")


def test_the_config_builds_the_datamodule_with_its_facts() -> None:
    from hydra.utils import instantiate

    from tests.helpers import compose_config

    config = compose_config(["data=ukiyoe", "data.resolution=64"])
    assert list(config.data.input_shape) == [3, 64, 64] and config.data.num_classes == len(SCENES)
    data = instantiate(config.data)
    assert isinstance(data, UkiyoeDM) and (data.resolution, data.num_classes) == (64, 4)
