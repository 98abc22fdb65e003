"""Print images as (float [-1, 1] (3, R, R), label) items: the procedural folder or a user's ImageFolder.

A user's folder may hold class sub-folders (torchvision ImageFolder layout) or just images (one class,
"prints"). Images are resized (shorter side) and centre-cropped to the resolution.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset
from torchvision.transforms.v2 import functional as F

from datamodules.image_files import open_rgb
from training.toolkit.errors import UserError

FLAT_FOLDER_CLASS = "prints"  # the class of a folder that holds images but no class sub-folders


class PrintImages(Dataset):
    """`samples` [(path, label), ...] as square `resolution` images; `flip`: random horizontal flips."""

    def __init__(self, samples: list[tuple[str, int]], resolution: int, flip: bool = False) -> None:
        self.samples = samples
        self.resolution = resolution
        self.flip = flip

    def __len__(self) -> int:
        return len(self.samples)

    def uint8(self, index: int) -> torch.Tensor:
        """uint8 (3, R, R) image `index`, resized (shorter side) and centre-cropped, never flipped."""
        image = F.pil_to_tensor(open_rgb(self.samples[index][0]))
        if image.shape[1:] != (self.resolution, self.resolution):
            image = F.center_crop(F.resize(image, self.resolution, antialias=True), self.resolution)
        return image

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.uint8(index)
        if self.flip and torch.rand(()) < 0.5:
            image = image.flip(-1)
        return image.float() / 127.5 - 1.0, self.samples[index][1]


def folder_samples(root: str | os.PathLike | None, key: str) -> tuple[list[tuple[str, int]], list[str]]:
    """(samples in ImageFolder order, class names) of a folder with class sub-folders or a flat folder of
    images; a UserError naming `key` when it is missing or holds no images."""
    hint = (
        f"Set {key} to a folder of images (one class) or with one sub-folder of images per class "
        f"(root/<class>/001.png), e.g. {key}=/data/prints/train; or set data.source=procedural."
    )
    if root is None or not Path(root).is_dir():
        raise UserError(f"{key}={root!r} is not an existing folder. {hint}")
    root = Path(root).resolve()
    classes = sorted(
        entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith(".")
    )
    if classes:
        samples = make_dataset(
            str(root), {name: i for i, name in enumerate(classes)}, IMG_EXTENSIONS, allow_empty=True
        )
    else:
        classes = [FLAT_FOLDER_CLASS]
        samples = sorted(
            (str(path), 0)
            for path in root.iterdir()
            if path.is_file() and path.suffix.lower() in IMG_EXTENSIONS
        )
    if not samples:
        raise UserError(f"{key}='{root}' holds no images ({', '.join(IMG_EXTENSIONS)}). {hint}")
    return samples, classes
