"""A DataLoader that shuffles by (seed, epoch), shards itself across ranks and resumes mid-epoch.

Lightning saves the `state_dict()` of stateful train loaders in every checkpoint and restores it
before iterating, so a run killed mid-epoch continues with exactly the batches it had not seen.
Every VisionCore train loader counts `fetch_seconds`, the main process's time spent waiting for its
batches, which the Heartbeat reports as the data-wait share.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sized
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

_END = object()  # next()'s default: a batch may be anything, even None


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class EpochSampler(Sampler[int]):
    """Index order fixed by (seed, epoch); every rank takes an equal, disjoint share.

    Like DistributedSampler it pads by repeating indices so all ranks see the same number of
    samples, but it reads the rank at iteration time (after the process group exists) and can
    skip the first `skip` indices of its share once, for mid-epoch resume.
    """

    def __init__(self, data_source: Sized, shuffle: bool, seed: int) -> None:
        self.num_samples_total = len(data_source)
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _share(self) -> list[int]:
        rank, world = _rank_and_world()
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.num_samples_total, generator=generator).tolist()
        else:
            order = list(range(self.num_samples_total))
        per_rank = math.ceil(self.num_samples_total / world)
        order += order[: per_rank * world - len(order)]
        return order[rank::world]

    def __iter__(self) -> Iterator[int]:
        share = self._share()
        skip, self.skip = self.skip, 0
        return iter(share[skip:])

    def __len__(self) -> int:
        _, world = _rank_and_world()
        return math.ceil(self.num_samples_total / world)


class ResumableLoader(DataLoader):
    """DataLoader over an `EpochSampler`; its state is (epoch, batches consumed this epoch).

    Alternatively pass a `batch_sampler` that has `epoch`, `set_epoch()` and a `skip` (in batches),
    and optionally `state_dict()`/`load_state_dict()` for what else its epoch depends on.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        batch_size: int | None = None,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        batch_sampler: Any | None = None,
    ) -> None:
        batching: dict[str, Any] = (
            {"batch_sampler": batch_sampler}
            if batch_sampler is not None
            else {
                "batch_size": batch_size,
                "sampler": EpochSampler(dataset, shuffle=shuffle, seed=seed),
                "drop_last": drop_last,
            }
        )
        super().__init__(
            dataset,
            **batching,
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=persistent_workers and num_workers > 0,
            collate_fn=collate_fn,
            # A private generator keeps worker seeding from consuming the global RNG, so the
            # global stream (augmentation, dropout) is the same after a resume.
            generator=torch.Generator().manual_seed(seed),
        )
        self._own_batch_sampler = batch_sampler is not None
        self._consumed = 0
        self.fetch_seconds = 0.0  # main-process time spent waiting for batches (the Heartbeat's data wait)
        self._pending: dict[str, Any] | None = None

    @property
    def _positioned(self) -> Any:
        """The object that knows the epoch and skips: the batch sampler, else the EpochSampler."""
        return self.batch_sampler if self._own_batch_sampler else self.sampler

    def __iter__(self) -> Iterator[Any]:
        # A generator: the sampler is only iterated on the first next(), i.e. after Lightning's
        # set_epoch() even though Lightning calls iter() earlier.
        positioned = self._positioned
        self._consumed = 0
        if self._pending is not None and self._pending["epoch"] == positioned.epoch:
            self._consumed = self._pending["batches"]
            if not self._own_batch_sampler:
                positioned.skip = self._consumed * self.batch_size
            else:
                positioned.skip = self._consumed
                if "sampler" in self._pending:
                    positioned.load_state_dict(self._pending["sampler"])
        self._pending = None
        batches = super().__iter__()
        while True:
            started = time.perf_counter()
            batch = next(batches, _END)
            if batch is _END:
                return
            self.fetch_seconds += time.perf_counter() - started
            self._consumed += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"epoch": self._positioned.epoch, "batches": self._consumed}
        if self._own_batch_sampler and hasattr(self.batch_sampler, "state_dict"):
            state["sampler"] = self.batch_sampler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pending = {**state, "epoch": int(state["epoch"]), "batches": int(state["batches"])}


def split_loader(dataset: Dataset, train: bool, hparams: Mapping[str, Any]) -> ResumableLoader:
    """A split's loader from a datamodule's `batch_size`, `eval_batch_size`, `seed`, `drop_last`,
    `num_workers`, `pin_memory` and `persistent_workers`: only training shuffles and drops the last
    partial batch; evaluation batches by `eval_batch_size` (default: `batch_size`)."""
    batch_size = hparams["batch_size"] if train else (hparams["eval_batch_size"] or hparams["batch_size"])
    return ResumableLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train,
        seed=hparams["seed"],
        drop_last=hparams["drop_last"] and train,
        num_workers=hparams["num_workers"],
        pin_memory=hparams["pin_memory"],
        persistent_workers=hparams["persistent_workers"],
    )
