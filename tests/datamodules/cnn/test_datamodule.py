"""ImageClassificationDM: seeded splits, eval-only val transform, constants, offline errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from datamodules.cnn import DataNotFoundError, ImageClassificationDM
from datamodules.cnn.datasets import DATASET_FACTS, DATASET_NAMES
from datamodules.cnn.procedural import ProceduralGratings
from datamodules.device_batches import DeviceImageBatches
from datamodules.loading import ResumableLoader

CONF_DATA = Path(__file__).resolve().parents[3] / "conf" / "data"
SMALL_GRATINGS = {"num_samples": 400, "num_classes": 4, "image_size": 12, "noise": 0.1, "seed": 3}


def digits(**kwargs) -> ImageClassificationDM:
    dm = ImageClassificationDM("digits", batch_size=64, **kwargs)
    dm.setup("fit")
    dm.setup("test")
    return dm


def test_digits_split_sizes_cover_all_images_once() -> None:
    dm = digits(val_fraction=0.1)
    train, val, test = dm.train_set.indices, dm.val_set.indices, dm.test_set.indices
    assert (len(train), len(val), len(test)) == (1294, 144, 359)
    assert sorted(train + val + test) == list(range(1797))


def test_digits_split_depends_only_on_split_seed() -> None:
    first, again, other = digits(split_seed=0), digits(split_seed=0), digits(split_seed=1)
    assert first.val_set.indices == again.val_set.indices
    assert first.train_set.indices == again.train_set.indices
    assert first.val_set.indices != other.val_set.indices
    assert first.test_set.indices == other.test_set.indices  # the held-out test set never moves


def test_val_split_uses_eval_transform_while_train_is_augmented() -> None:
    dm = digits(augment=True)
    torch.manual_seed(0)
    for i in range(5):
        assert torch.equal(dm.val_set[i][0], dm.val_set[i][0])
    assert any(not torch.equal(dm.train_set[i][0], dm.train_set[i][0]) for i in range(20))
    # A val item is exactly its source image normalised, with no geometric change.
    source_image, _ = dm.val_set.source[dm.val_set.indices[0]]
    facts = DATASET_FACTS["digits"]
    torch.testing.assert_close(dm.val_set[0][0], (source_image - facts.mean[0]) / facts.std[0])


def test_digits_train_split_is_normalised_to_zero_mean_unit_std() -> None:
    dm = digits(augment=False)
    images = torch.stack([dm.train_set[i][0] for i in range(len(dm.train_set))])
    assert images.shape == (1294, 1, 8, 8)
    assert abs(images.mean().item()) < 0.02
    assert abs(images.std().item() - 1.0) < 0.02


def test_normalisation_constants_are_the_measured_ones() -> None:
    cifar10 = DATASET_FACTS["cifar10"]
    assert cifar10.mean == (0.4914, 0.4822, 0.4465)
    assert cifar10.std == (0.2470, 0.2435, 0.2616)  # not the often-copied (0.2023, 0.1994, 0.2010)
    assert DATASET_FACTS["cifar100"].std == (0.2673, 0.2564, 0.2762)
    assert (DATASET_FACTS["mnist"].mean, DATASET_FACTS["mnist"].std) == ((0.1307,), (0.3081,))
    assert (DATASET_FACTS["fashion_mnist"].mean, DATASET_FACTS["fashion_mnist"].std) == ((0.2860,), (0.3530,))


def test_procedural_gratings_are_deterministic_per_seed() -> None:
    first, again = ProceduralGratings(SMALL_GRATINGS), ProceduralGratings(SMALL_GRATINGS)
    other = ProceduralGratings({**SMALL_GRATINGS, "seed": 4})
    assert torch.equal(first.images, again.images) and torch.equal(first.targets, again.targets)
    assert not torch.equal(first.images, other.images)
    assert first.images.shape == (400, 1, 12, 12)
    assert torch.bincount(first.targets).tolist() == [100] * 4
    assert first.images.min() >= 0.0 and first.images.max() <= 1.0


def test_procedural_classes_are_separable_by_their_means() -> None:
    dm = ImageClassificationDM("procedural", procedural=SMALL_GRATINGS, augment=False)
    dm.setup()
    train = torch.stack([dm.train_set[i][0] for i in range(len(dm.train_set))]).flatten(1)
    train_y = torch.tensor([dm.train_set[i][1] for i in range(len(dm.train_set))])
    class_means = torch.stack([train[train_y == k].mean(0) for k in range(4)])
    assert torch.cdist(class_means, class_means).add(torch.eye(4) * 1e9).min() > 5.0

    test = torch.stack([dm.test_set[i][0] for i in range(len(dm.test_set))]).flatten(1)
    test_y = torch.tensor([dm.test_set[i][1] for i in range(len(dm.test_set))])
    nearest_mean = torch.cdist(test, class_means).argmin(1)
    assert (nearest_mean == test_y).float().mean() > 0.95


def test_procedural_facts_follow_its_settings() -> None:
    dm = ImageClassificationDM("procedural", procedural={"num_classes": 3, "channels": 3, "image_size": 10})
    assert dm.num_classes == 3
    assert dm.input_shape == (3, 10, 10)
    assert dm.class_names == ["grating_000deg", "grating_060deg", "grating_120deg"]


@pytest.mark.parametrize(
    "dataset, folder",
    [
        ("cifar10", "cifar-10-batches-py"),
        ("cifar100", "cifar-100-python"),
        ("mnist", "MNIST/raw"),
        ("fashion_mnist", "FashionMNIST/raw"),
    ],
)
def test_missing_torchvision_data_names_path_and_fixes(tmp_path: Path, dataset: str, folder: str) -> None:
    dm = ImageClassificationDM(dataset, data_dir=str(tmp_path), download=False)
    with pytest.raises(DataNotFoundError) as caught:
        dm.setup("fit")
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    assert dataset in message
    assert str(tmp_path / folder) in message
    assert "data.download=true" in message
    assert "Dataset not found" not in message and caught.value.__suppress_context__


def write_image_folder(root: Path, classes: tuple[str, ...] = ("cat", "dog"), per_class: int = 3) -> Path:
    generator = torch.Generator().manual_seed(0)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = torch.randint(0, 256, (10 + i, 12, 3), generator=generator, dtype=torch.uint8)
            Image.fromarray((pixels // 2 + 100 * k).numpy()).save(root / name / f"{i}.png")
    return root


def test_image_folder_reads_classes_and_splits_a_tiny_folder(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "train")
    dm = ImageClassificationDM(
        "image_folder",
        image_folder={"train": str(root), "image_size": 8},
        batch_size=2,
        drop_last=False,
        val_fraction=0.2,
        num_classes=2,
    )
    assert (dm.num_classes, dm.input_shape, dm.class_names) == (2, (3, 8, 8), ["cat", "dog"])
    dm.setup()
    sizes = (len(dm.train_set), len(dm.val_set), len(dm.test_set))
    assert sizes == (4, 1, 1)
    assert sorted(dm.train_set.indices + dm.val_set.indices + dm.test_set.indices) == list(range(6))
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (2, 3, 8, 8) and images.dtype == torch.float32
    assert set(labels.tolist()) <= {0, 1}
    assert torch.equal(dm.val_set[0][0], dm.val_set[0][0])


def test_image_folder_uses_a_given_test_folder(tmp_path: Path) -> None:
    train = write_image_folder(tmp_path / "train")
    test = write_image_folder(tmp_path / "test", per_class=2)
    dm = ImageClassificationDM(
        "image_folder",
        image_folder={"train": str(train), "test": str(test), "image_size": 8},
        val_fraction=0.0,
    )
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (6, 0, 4)
    assert dm.val_dataloader() == []


def test_image_folder_missing_or_empty_names_the_config_key(tmp_path: Path) -> None:
    missing = ImageClassificationDM("image_folder", image_folder={"train": str(tmp_path / "absent")})
    with pytest.raises(DataNotFoundError, match=r"data\.image_folder\.train"):
        missing.setup("fit")
    (tmp_path / "empty").mkdir()
    empty = ImageClassificationDM("image_folder", image_folder={"train": str(tmp_path / "empty")})
    with pytest.raises(DataNotFoundError, match=r"data\.image_folder\.train"):
        _ = empty.num_classes
    (tmp_path / "no_images" / "cat").mkdir(parents=True)
    no_images = ImageClassificationDM("image_folder", image_folder={"train": str(tmp_path / "no_images")})
    with pytest.raises(DataNotFoundError, match=r"no images .*data\.image_folder\.train"):
        no_images.setup("fit")


def test_config_facts_that_disagree_with_the_dataset_raise() -> None:
    with pytest.raises(ValueError, match=r"data\.num_classes=12 but the dataset has 10"):
        ImageClassificationDM("digits", num_classes=12)
    with pytest.raises(ValueError, match=r"data\.input_shape"):
        ImageClassificationDM("mnist", input_shape=[1, 32, 32])
    with pytest.raises(ValueError, match=r"data\.class_names"):
        ImageClassificationDM("cifar10", class_names=["a"] * 10)
    with pytest.raises(ValueError, match=r"data\.dataset='imagenet'"):
        ImageClassificationDM("imagenet")


def test_image_folder_num_classes_is_checked_against_the_folder(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "train")
    dm = ImageClassificationDM("image_folder", image_folder={"train": str(root)}, num_classes=5)
    with pytest.raises(ValueError, match=r"data\.num_classes=5"):
        dm.setup("fit")


@pytest.mark.parametrize("on_device", [False, True])
def test_loaders_are_resumable_with_configured_batches(on_device: bool) -> None:
    dm = digits(
        eval_batch_size=100, num_workers=0, persistent_workers=True, shuffle_seed=7, on_device=on_device
    )
    train, val = dm.train_dataloader(), dm.val_dataloader()
    kind = DeviceImageBatches if on_device else ResumableLoader
    assert isinstance(train, kind) and isinstance(val, kind) and callable(train.state_dict)
    assert (train.batch_size, train.drop_last, train.sampler.shuffle, train.sampler.seed) == (
        64,
        True,
        True,
        7,
    )
    assert (val.batch_size, val.drop_last, val.sampler.shuffle) == (100, False, False)
    assert on_device or not train.persistent_workers
    assert len(dm.predict_dataloader().dataset) == len(dm.test_set)


@pytest.mark.parametrize("name", sorted(set(DATASET_NAMES) - {"image_folder"}))
def test_data_config_states_the_dataset_facts(tmp_path: Path, name: str) -> None:
    """Each conf/data option instantiates, and its stated facts pass the datamodule's check."""
    cfg = OmegaConf.create(
        {"paths": {"data_dir": str(tmp_path)}, "data": OmegaConf.load(CONF_DATA / f"{name}.yaml")}
    )
    dm = instantiate(cfg.data)
    assert dm.dataset == name
    assert dm.num_classes == cfg.data.num_classes
    assert list(dm.input_shape) == list(cfg.data.input_shape)


def test_image_folder_config_needs_the_train_folder_and_class_count(tmp_path: Path) -> None:
    cfg = OmegaConf.load(CONF_DATA / "image_folder.yaml")
    assert OmegaConf.is_missing(cfg.image_folder, "train") and OmegaConf.is_missing(cfg, "num_classes")
    root = write_image_folder(tmp_path / "train")
    cfg = OmegaConf.create({"paths": {"data_dir": str(tmp_path)}, "data": cfg})
    cfg.data.image_folder.train, cfg.data.num_classes = str(root), 2
    dm = instantiate(cfg.data)
    assert (dm.num_classes, dm.input_shape) == (2, (3, 32, 32))
