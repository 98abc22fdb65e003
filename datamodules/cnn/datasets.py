"""Image classification sources for the `cnn` system: the facts table, transforms and loaders.

Every source is loaded *without* a transform; `TransformedSubset` applies the train or eval
transform per split, so a validation split carved from the training set is never augmented.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch.utils.data import Dataset
from torchvision import datasets
from torchvision.datasets.folder import find_classes
from torchvision.transforms import v2

from datamodules.cnn.procedural import ProceduralGratings, grating_class_names, procedural_settings
from datamodules.device_batches import BatchAugment
from datamodules.image_files import open_rgb

DATASET_NAMES = ("digits", "procedural", "cifar10", "cifar100", "mnist", "fashion_mnist", "image_folder")
TORCHVISION_SETS = ("cifar10", "cifar100", "mnist", "fashion_mnist")

# Sources without an official test split hold out this fixed share, the same for every run.
HELD_OUT_TEST_FRACTION = 0.2
HELD_OUT_TEST_SEED = 0


class DataNotFoundError(FileNotFoundError):
    """Dataset files are missing (offline machine, wrong `data.data_dir`); the message says how to fix."""


@dataclass(frozen=True)
class DatasetFacts:
    """What a model needs to know before any data is read; None = set by the config block."""

    num_classes: int | None
    input_shape: tuple[int, int, int] | None
    class_names: tuple[str, ...] | None
    mean: tuple[float, ...]
    std: tuple[float, ...]


_DIGITS = tuple(str(d) for d in range(10))
_CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# CIFAR-100 fine labels in label order (alphabetical), as one word list rather than 100 strings.
_CIFAR100_WORDS = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly "
    "camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile "
    "cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp "
    "lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree "
    "orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine possum "
    "rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper snail snake spider "
    "squirrel streetcar sunflower sweet_pepper table tank telephone television tiger tractor train "
    "trout tulip turtle wardrobe whale willow_tree wolf woman worm"
)
_CIFAR100 = tuple(_CIFAR100_WORDS.split())
_FASHION = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# The one table of per-dataset constants. Normalisation is the per-channel mean/std of the
# training pixels scaled to [0, 1] (CIFAR-10 std is 0.2470/0.2435/0.2616, not 0.2023/0.1994/0.2010).
DATASET_FACTS: dict[str, DatasetFacts] = {
    "digits": DatasetFacts(10, (1, 8, 8), _DIGITS, (0.3053,), (0.3760,)),
    "cifar10": DatasetFacts(10, (3, 32, 32), _CIFAR10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": DatasetFacts(100, (3, 32, 32), _CIFAR100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "mnist": DatasetFacts(10, (1, 28, 28), _DIGITS, (0.1307,), (0.3081,)),
    "fashion_mnist": DatasetFacts(10, (1, 28, 28), _FASHION, (0.2860,), (0.3530,)),
    # Shape and classes come from data.procedural; stats are those of the default gratings.
    "procedural": DatasetFacts(None, None, None, (0.5,), (0.225,)),
    # Shape and classes come from data.image_folder; ImageNet statistics as a generic default.
    "image_folder": DatasetFacts(None, None, None, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

# torchvision class, folder under data_dir, the files it must hold, and how to get them there.
_TORCHVISION: dict[str, tuple[type[Dataset], str, tuple[str, ...], str]] = {
    "cifar10": (
        datasets.CIFAR10,
        "cifar-10-batches-py",
        (
            "data_batch_1",
            "data_batch_2",
            "data_batch_3",
            "data_batch_4",
            "data_batch_5",
            "test_batch",
            "batches.meta",
        ),
        "extract cifar-10-python.tar.gz into data_dir; or put the archive itself in data_dir",
    ),
    "cifar100": (
        datasets.CIFAR100,
        "cifar-100-python",
        ("train", "test", "meta"),
        "extract cifar-100-python.tar.gz into data_dir; or put the archive itself in data_dir",
    ),
    "mnist": (
        datasets.MNIST,
        os.path.join("MNIST", "raw"),
        (
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ),
        "unpacked; or put the four .gz archives there",
    ),
    "fashion_mnist": (
        datasets.FashionMNIST,
        os.path.join("FashionMNIST", "raw"),
        (
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ),
        "unpacked; or put the four .gz archives there",
    ),
}


def resolve_facts(dataset: str, procedural: dict[str, Any], image_folder: dict[str, Any]) -> DatasetFacts:
    """Complete facts for `dataset`: the table row, with config-dependent fields filled in."""
    facts = DATASET_FACTS[dataset]
    if dataset == "procedural":
        settings = procedural_settings(procedural)
        channels, size = settings["channels"], settings["image_size"]
        return replace(
            facts,
            num_classes=settings["num_classes"],
            input_shape=(channels, size, size),
            class_names=tuple(grating_class_names(settings["num_classes"])),
            mean=facts.mean * channels,
            std=facts.std * channels,
        )
    if dataset == "image_folder":
        classes = image_folder_classes(image_folder.get("train"), "data.image_folder.train")
        size = int(image_folder.get("image_size", 32))
        return replace(
            facts, num_classes=len(classes), input_shape=(3, size, size), class_names=tuple(classes)
        )
    return facts


def build_transforms(dataset: str, facts: DatasetFacts, augment: bool) -> tuple[Callable, Callable]:
    """(train, eval) transforms: standard augmentation for train only, normalisation for both."""
    _, height, _ = facts.input_shape  # type: ignore[misc]
    augmentation: list[Callable] = []
    geometry: list[Callable] = []
    if dataset in ("cifar10", "cifar100"):
        augmentation = [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()]
    elif dataset in ("mnist", "fashion_mnist"):
        augmentation = [v2.RandomCrop(28, padding=2)]  # no flip: mirrored digits/garments are other things
    elif dataset == "digits":
        augmentation = [v2.RandomAffine(degrees=0, translate=(1 / 8, 1 / 8))]  # shift by at most 1 px
    elif dataset == "procedural":
        # Shift only: a flip or rotation would change a grating's orientation, i.e. its class.
        augmentation = [v2.RandomCrop(height, padding=height // 8, padding_mode="reflect")]
    elif dataset == "image_folder":
        augmentation = [
            v2.RandomResizedCrop(height, scale=(0.5, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
        ]
        geometry = [v2.Resize(height, antialias=True), v2.CenterCrop(height)]

    to_input = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(facts.mean, facts.std), v2.ToPureTensor()]
    train = v2.Compose([v2.ToImage(), *(augmentation if augment else geometry), *to_input])
    evaluate = v2.Compose([v2.ToImage(), *geometry, *to_input])
    return train, evaluate


def batch_augment(dataset: str, facts: DatasetFacts) -> BatchAugment:
    """The training augmentation of `build_transforms` for whole batches on the device (`data.on_device`)."""
    _, height, _ = facts.input_shape  # type: ignore[misc]
    if dataset in ("cifar10", "cifar100"):
        return BatchAugment(padding=4, flip=True)
    if dataset in ("mnist", "fashion_mnist"):
        return BatchAugment(padding=2)
    if dataset == "digits":
        return BatchAugment(padding=1)  # RandomAffine's integer shift by at most 1 px, zeros shifted in
    if dataset == "procedural":
        return BatchAugment(padding=height // 8, pad_mode="reflect")
    raise ValueError(f"no batched augmentation for dataset {dataset!r}")


class TransformedSubset(Dataset):
    """The items `indices` of `source`, with `transform` applied to the image only."""

    def __init__(self, source: Dataset, indices: Sequence[int], transform: Callable) -> None:
        self.source = source
        self.indices = list(indices)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, target = self.source[self.indices[index]]
        return self.transform(image), int(target)


class DigitsImages(Dataset):
    """scikit-learn's bundled 8x8 digits (1797 images, shipped with the package) as [0, 1] tensors."""

    def __init__(self) -> None:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        self.images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
        self.targets = torch.as_tensor(bunch.target, dtype=torch.long)
        self.classes = list(_DIGITS)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.targets[index])


def _missing_message(dataset: str, data_dir: str, problem: str) -> str:
    _, folder, files, archive_hint = _TORCHVISION[dataset]
    data_dir = os.path.abspath(data_dir)
    expected = os.path.join(data_dir, folder)
    return (
        f"{dataset}: {problem} Expected the files {', '.join(files)} in '{expected}'. Fix it in one of two "
        f"ways: (1) put the files there ({archive_hint} and set data.download=true, which verifies checksums "
        f"and extracts without network), or (2) set data.download=true to download "
        f"the dataset into data.data_dir='{data_dir}' (needs internet)."
    )


def load_torchvision(dataset: str, data_dir: str, train: bool, download: bool) -> Dataset:
    """A torchvision dataset (no transform), or `DataNotFoundError` saying where the files belong."""
    cls, *_ = _TORCHVISION[dataset]
    try:
        return cls(root=data_dir, train=train, download=download)  # type: ignore[call-arg]
    except (RuntimeError, OSError) as error:
        if download:
            problem = f"download failed ({type(error).__name__}: {error}); this machine may be offline."
        else:
            problem = "the dataset was not found or is incomplete/corrupted and data.download is false."
        raise DataNotFoundError(_missing_message(dataset, data_dir, problem)) from None


def image_folder_classes(root: str | None, key: str) -> list[str]:
    """Class folder names under `root` (ImageFolder's order), or a `DataNotFoundError` naming `key`."""
    hint = (
        f"Set {key} to a folder with one sub-folder of images per class "
        "(e.g. root/cat/001.png, root/dog/001.png)."
    )
    if root is None or not os.path.isdir(root):
        raise DataNotFoundError(f"image_folder: {key}={root!r} is not an existing folder. {hint}")
    try:
        classes, _ = find_classes(root)
    except FileNotFoundError:
        raise DataNotFoundError(
            f"image_folder: {key}='{os.path.abspath(root)}' has no class sub-folders. {hint}"
        ) from None
    return classes


def load_image_folder(root: str | None, key: str) -> datasets.ImageFolder:
    """An ImageFolder (no transform), or a `DataNotFoundError` naming the config `key` at fault."""
    image_folder_classes(root, key)
    folder = os.path.abspath(str(root))
    try:
        return datasets.ImageFolder(folder, loader=functools.partial(open_rgb, key=key))
    except FileNotFoundError:
        raise DataNotFoundError(
            f"image_folder: {key}='{folder}' has class sub-folders but no images with a known extension "
            f"({', '.join(datasets.folder.IMG_EXTENSIONS)}). Put the images there or fix {key}."
        ) from None


def load_source(
    dataset: str,
    split: str,
    data_dir: str,
    download: bool,
    procedural: dict[str, Any],
    image_folder: dict[str, Any],
) -> Dataset | None:
    """Raw (untransformed) `split` ("train" or "test") of `dataset`; None where there is no official test split."""
    if dataset in TORCHVISION_SETS:
        return load_torchvision(dataset, data_dir, train=split == "train", download=download)
    if dataset == "image_folder":
        root = image_folder.get(split)
        return (
            None
            if split == "test" and root is None
            else load_image_folder(root, f"data.image_folder.{split}")
        )
    if split == "test":
        return None
    return DigitsImages() if dataset == "digits" else ProceduralGratings(procedural)


def held_out_test_split(num_items: int) -> tuple[list[int], list[int]]:
    """(remaining, test) indices: a fixed `HELD_OUT_TEST_FRACTION` test share, the same for every run."""
    order = torch.randperm(num_items, generator=torch.Generator().manual_seed(HELD_OUT_TEST_SEED)).tolist()
    num_test = round(HELD_OUT_TEST_FRACTION * num_items)
    return sorted(order[num_test:]), sorted(order[:num_test])


def train_val_split(
    indices: Sequence[int], val_fraction: float, split_seed: int
) -> tuple[list[int], list[int]]:
    """(train, val) subsets of `indices` by `random_split` with a seeded generator: identical on all ranks."""
    num_val = round(val_fraction * len(indices))
    train, val = torch.utils.data.random_split(
        list(indices), [len(indices) - num_val, num_val], generator=torch.Generator().manual_seed(split_seed)
    )
    return [indices[i] for i in train.indices], [indices[i] for i in val.indices]
