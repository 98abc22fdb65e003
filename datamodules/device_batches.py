"""Small image sets held on the training device as one tensor, cut into batches and augmented there.

The per-image path (a Dataset, a torchvision transform per image, collation) costs more than the step
for small images: 775 µs per 8×8 digit for `RandomAffine`, 3-4× the training step. Here the whole split
is one tensor (uint8 where the source is) on the device the model trains on; a batch is an index
gather, a random crop from the zero- or reflect-padded batch, a flip, and the normalisation, all
batched, as the fastest CIFAR trainers do (airbench, hlb-CIFAR10).

Order and sharding come from `EpochSampler` (seed, epoch, rank). Batches are made up to 16 at a time
(`batches_per_chunk`), and each chunk's augmentation draws from a generator seeded by (seed, epoch, chunk
index), so a run resumed mid-epoch sees exactly the batches and augmentations it would have seen
(`state_dict`: epoch and batches consumed, as `ResumableLoader`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from datamodules.loading import EpochSampler


@dataclass(frozen=True)
class BatchAugment:
    """Random translation by cropping from a `padding`-padded image (`pad_mode` zeros or reflect), and
    optionally a horizontal flip with probability 1/2: torchvision's RandomCrop(padding) + RandomHorizontalFlip,
    and RandomAffine's integer translation, for a whole batch."""

    padding: int = 0
    pad_mode: str = "constant"  # "constant" (zeros) | "reflect"
    flip: bool = False

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        batch, _, height, width = images.shape
        if self.padding:
            p = self.padding
            padded = F.pad(
                images if self.pad_mode == "constant" else images.float(), (p, p, p, p), mode=self.pad_mode
            )
            padded = padded.to(images.dtype)
            offsets = torch.randint(0, 2 * p + 1, (batch, 2), generator=generator, device=images.device)
            rows = offsets[:, :1] + torch.arange(height, device=images.device)  # (B, H)
            cols = offsets[:, 1:] + torch.arange(width, device=images.device)  # (B, W)
            picked = padded[
                torch.arange(batch, device=images.device)[:, None, None],
                :,
                rows[:, :, None],
                cols[:, None, :],
            ]
            images = picked.permute(0, 3, 1, 2)  # advanced indexing put the channels last
        if self.flip:
            flip = torch.rand(batch, generator=generator, device=images.device) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        return images.contiguous()


class DeviceImageBatches:
    """A resumable loader of (normalised images, labels) batches cut from tensors on one device.

    `images` (N, C, H, W) holds pixels as stored (uint8, or float in [0, 1]); `scale` maps them to [0, 1]
    before `mean`/`std` normalisation. Lightning calls `sampler.set_epoch` and saves `state_dict()`.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int,
        drop_last: bool,
        mean: Sequence[float],
        std: Sequence[float],
        augment: BatchAugment | None = None,
    ) -> None:
        self.images, self.labels = images, labels
        self.batch_size, self.drop_last, self.seed = batch_size, drop_last, seed
        self.augment = augment
        self.scale = 1.0 / 255.0 if images.dtype == torch.uint8 else 1.0
        shape = (1, -1, 1, 1)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=images.device).reshape(shape)
        self.std = torch.tensor(std, dtype=torch.float32, device=images.device).reshape(shape)
        self.sampler = EpochSampler(labels, shuffle=shuffle, seed=seed)
        self.batch_sampler = None  # Lightning inspects DataLoader-like objects for both
        self._consumed = 0
        self._pending: dict[str, int] | None = None
        self.fetch_seconds = 0.0  # time spent making batches (the Heartbeat's data wait)

    def __len__(self) -> int:
        per_rank = len(self.sampler)
        return per_rank // self.batch_size if self.drop_last else math.ceil(per_rank / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # A generator: the order is read on the first next(), after Lightning's set_epoch.
        epoch = self.sampler.epoch
        start = 0
        if self._pending is not None and self._pending["epoch"] == epoch:
            start = self._pending["batches"]
        self._pending = None
        order = torch.tensor(list(iter(self.sampler)), dtype=torch.long, device=self.images.device)
        self._consumed = start
        per_chunk = self.batches_per_chunk
        for chunk in range(start // per_chunk, math.ceil(len(self) / per_chunk)):
            started = time.perf_counter()
            first, last = chunk * per_chunk, min((chunk + 1) * per_chunk, len(self))
            take = order[first * self.batch_size : last * self.batch_size]
            images = self.images[take]
            if self.augment is not None:
                generator = torch.Generator(device=self.images.device)
                generator.manual_seed((self.seed * 1_000_003 + epoch) * 1_000_003 + chunk)
                images = self.augment(images, generator)
            images, labels = (images.float() * self.scale - self.mean) / self.std, self.labels[take]
            for index in range(max(first, start), last):
                rows = slice((index - first) * self.batch_size, (index - first + 1) * self.batch_size)
                self.fetch_seconds += time.perf_counter() - started  # host time; a GPU runs kernels later
                self._consumed = index + 1
                yield images[rows], labels[rows]
                started = time.perf_counter()

    @property
    def batches_per_chunk(self) -> int:
        """Batches made in one go: on small images each op's launch costs more than its work, so up to
        16 batches share one gather, augmentation and normalisation (at most 2^24 floats at a time)."""
        per_batch = self.batch_size * self.images[0].numel()
        return max(1, min(16, 2**24 // max(per_batch, 1)))

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.sampler.epoch, "batches": self._consumed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pending = {"epoch": int(state["epoch"]), "batches": int(state["batches"])}


def training_device(datamodule: Any) -> torch.device:
    """The device the datamodule's trainer trains on (CPU before a trainer is attached)."""
    trainer = getattr(datamodule, "trainer", None)
    return trainer.strategy.root_device if trainer is not None else torch.device("cpu")


def stack_images(source: Any, indices: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A source's images as one (N, C, H, W) tensor (uint8 kept) and its labels, read once.

    torchvision's CIFAR/MNIST keep their pixels in `.data`: taken as they are; any other map-style
    dataset of (tensor image, label) is read item by item."""
    data, targets = getattr(source, "data", None), getattr(source, "targets", None)
    if data is not None and targets is not None:
        images = torch.as_tensor(data)
        images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)  # MNIST / CIFAR
        labels = torch.as_tensor(targets, dtype=torch.long)
    else:
        items = [source[i] for i in range(len(source))]
        images = torch.stack([torch.as_tensor(image) for image, _ in items])
        labels = torch.tensor([int(label) for _, label in items], dtype=torch.long)
    if indices is not None:
        take = torch.as_tensor(list(indices), dtype=torch.long)
        images, labels = images[take], labels[take]
    return images.contiguous(), labels
