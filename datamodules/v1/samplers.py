"""Which windows each step holds, for every rank and epoch, reproducibly and resumably.

- `ShuffledDraws` / `ContrastWeightedSampler`: one session's training draws (uniform without
  replacement / weighted by stimulus contrast).
- `StratifiedBatchSampler`: training steps holding `batch_size` windows of every session (or of a
  seeded, rank-synchronised draw of sessions).
- `EvalBatchSampler`: every evaluation window once, in order, sharded across ranks and padded.

All of them read the rank and world size when iterated (after the process group exists), like
`datamodules.loading.EpochSampler`, and shard themselves: Lightning must not wrap them in a
DistributedSampler (`use_distributed_sampler: false` in conf/trainer/default.yaml).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np
from torch.utils.data import Sampler

from datamodules import loading
from datamodules.v1.windows import SessionDraw
from training.toolkit.errors import UserError

# Distinct entropy words so the streams of different purposes never coincide.
_SHUFFLE, _WEIGHTED, _SESSIONS = 1, 2, 3


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng([int(key) for key in keys])


class SessionSampler(Protocol):
    """One session's training draws: `count` window positions for `rank` in `epoch`."""

    def settings(self) -> dict[str, Any]: ...

    def rank_draws(
        self, count: int, epoch: int, rank: int, world: int, settings: dict[str, Any] | None = None
    ) -> np.ndarray: ...


class ShuffledDraws:
    """Uniform draws without replacement: passes over the windows in fresh orders fixed by (seed, epoch).

    All ranks read one stream; rank r takes its slice [r*count, (r+1)*count), so shares are disjoint.
    """

    def __init__(self, num_samples: int, seed: int = 0, stream: int = 0) -> None:
        if num_samples < 1:
            raise ValueError("ShuffledDraws needs at least one window.")
        self.num_samples, self.seed, self.stream = int(num_samples), int(seed), int(stream)

    def settings(self) -> dict[str, Any]:
        return {}

    def rank_draws(
        self, count: int, epoch: int, rank: int, world: int, settings: dict[str, Any] | None = None
    ) -> np.ndarray:
        if count == 0:
            return np.zeros(0, dtype=np.int64)
        begin, n = rank * count, self.num_samples
        passes = range(begin // n, (begin + count - 1) // n + 1)  # only the passes this slice touches
        stream = np.concatenate(
            [_rng(self.seed, self.stream, epoch, p, _SHUFFLE).permutation(n) for p in passes]
        )
        offset = begin - passes[0] * n
        return stream[offset : offset + count].astype(np.int64)


class ContrastWeightedSampler(Sampler[int]):
    """Draws a session's windows with probability ∝ contrast**power, excluding contrast < threshold.

    `contrast` is each window's RMS contrast of its current frame (std/255 of the pixels, see
    `windows.FrameSource.rms_contrast`). Draws are with replacement from a generator seeded by
    (seed, stream, epoch, rank): each rank draws its own share. Curriculum stages move
    `contrast_threshold` (and `power`) through the datamodule's `set_curriculum_stage`.

    As a plain Sampler it yields ceil(num_samples / world) indices per rank and epoch (default
    num_samples: the number of windows) and skips its first `skip` indices once, for resume.
    """

    def __init__(
        self,
        contrast: np.ndarray,
        *,
        power: float = 1.0,
        contrast_threshold: float = 0.0,
        num_samples: int | None = None,
        seed: int = 0,
        stream: int = 0,
        name: str = "",
    ) -> None:
        self.contrast = np.nan_to_num(np.asarray(contrast, dtype=np.float64), nan=0.0)
        if power < 0:
            raise UserError(f"data.sampler.power={power}: must be >= 0 (0 weights every window equally).")
        self.power, self.contrast_threshold = float(power), float(contrast_threshold)
        self.num_samples = len(self.contrast) if num_samples is None else int(num_samples)
        self.seed, self.stream, self.name = int(seed), int(stream), name
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def settings(self) -> dict[str, Any]:
        return {"power": self.power, "contrast_threshold": self.contrast_threshold}

    def probabilities(self, settings: dict[str, Any] | None = None) -> np.ndarray:
        """Each window's draw probability under `settings` (default: the current ones)."""
        chosen = settings or self.settings()
        power, threshold = chosen["power"], chosen["contrast_threshold"]
        weights = np.where(self.contrast >= threshold, self.contrast**power, 0.0)
        total = weights.sum()
        if total <= 0:
            raise UserError(
                f"ContrastWeightedSampler{f' ({self.name})' if self.name else ''}: no window has contrast >= "
                f"{threshold} (the highest is {self.contrast.max():.4g}). Lower data.sampler.contrast_threshold "
                "or the curriculum stage's contrast_threshold."
            )
        return weights / total

    def rank_draws(
        self, count: int, epoch: int, rank: int, world: int, settings: dict[str, Any] | None = None
    ) -> np.ndarray:
        generator = _rng(self.seed, self.stream, epoch, rank, _WEIGHTED)
        return generator.choice(len(self.contrast), size=count, p=self.probabilities(settings)).astype(
            np.int64
        )

    def __len__(self) -> int:
        _, world = loading._rank_and_world()
        return math.ceil(self.num_samples / world)

    def __iter__(self) -> Iterator[int]:
        rank, world = loading._rank_and_world()
        draws = self.rank_draws(math.ceil(self.num_samples / world), self.epoch, rank, world)
        skip, self.skip = self.skip, 0
        return iter(draws[skip:].tolist())


class StratifiedBatchSampler:
    """Training steps: each holds `batch_size` windows of every session, as one `SessionDraw` per session.

    With `sessions_per_step=k` each step holds k sessions instead, drawn from (seed, epoch) only, so every
    rank picks the same ones (equal work per rank, no rank waits). Steps per epoch: `steps_per_epoch`,
    by default enough for the largest session's windows to be drawn once over all ranks.

    An epoch's draws are fixed when its iteration starts, with the session samplers' settings at that
    moment (a contrast threshold moved mid-epoch applies from the next epoch). `state_dict()` returns
    those settings and `load_state_dict` reuses them for the epoch being resumed; `skip` (set by
    `ResumableLoader`) drops the epoch's first batches once.
    """

    def __init__(
        self,
        samplers: Sequence[SessionSampler],
        sizes: Sequence[int],
        batch_size: int,
        steps_per_epoch: int | None = None,
        sessions_per_step: int | None = None,
        seed: int = 0,
    ) -> None:
        if batch_size < 1:
            raise UserError(f"data.batch_size={batch_size}: must be >= 1 (windows per session per step).")
        count = len(samplers)
        if sessions_per_step is not None and not 1 <= sessions_per_step <= count:
            raise UserError(
                f"data.sessions_per_step={sessions_per_step}: must be in 1..{count} (or null: all)."
            )
        if steps_per_epoch is not None and steps_per_epoch < 1:
            raise UserError(f"data.steps_per_epoch={steps_per_epoch}: must be >= 1 (or null: automatic).")
        self.samplers = list(samplers)
        self.sizes = [int(size) for size in sizes]
        self.batch_size = int(batch_size)
        self.steps_per_epoch = steps_per_epoch
        self.sessions_per_step = sessions_per_step or count
        self.seed = int(seed)
        self.epoch = 0
        self.skip = 0
        self._epoch_settings: list[dict[str, Any]] | None = None
        self._resume_settings: list[dict[str, Any]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def steps(self, world: int) -> int:
        if self.steps_per_epoch is not None:
            return int(self.steps_per_epoch)
        share = len(self.samplers) / self.sessions_per_step  # how rarely a session is in a step
        return max(1, math.ceil(max(self.sizes) * share / (self.batch_size * world)))

    def __len__(self) -> int:
        return self.steps(loading._rank_and_world()[1])

    def selection(self, steps: int) -> np.ndarray:
        """(steps, sessions) bool: which sessions each step holds; the same on every rank."""
        count = len(self.samplers)
        chosen = np.ones((steps, count), dtype=bool)
        if self.sessions_per_step < count:
            generator = _rng(self.seed, self.epoch, _SESSIONS)
            chosen[:] = False
            for step in range(steps):
                chosen[step, generator.permutation(count)[: self.sessions_per_step]] = True
        return chosen

    def __iter__(self) -> Iterator[list[SessionDraw]]:
        rank, world = loading._rank_and_world()
        steps = self.steps(world)
        settings = self._resume_settings or [sampler.settings() for sampler in self.samplers]
        self._resume_settings, self._epoch_settings = None, settings
        chosen = self.selection(steps)
        rows = np.cumsum(chosen, axis=0) - 1  # the row of a session's draws each step uses
        draws = [
            sampler.rank_draws(
                int(chosen[:, i].sum()) * self.batch_size, self.epoch, rank, world, settings[i]
            ).reshape(-1, self.batch_size)
            for i, sampler in enumerate(self.samplers)
        ]
        skip, self.skip = self.skip, 0
        for step in range(skip, steps):
            yield [SessionDraw(i, draws[i][rows[step, i]]) for i in np.flatnonzero(chosen[step])]

    def state_dict(self) -> dict[str, Any]:
        return {"settings": self._epoch_settings or [sampler.settings() for sampler in self.samplers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._resume_settings = state.get("settings")


class EvalBatchSampler:
    """Every evaluation window exactly once, in session order, sharded across ranks.

    Rank r holds the contiguous slice [r*p, (r+1)*p) of each session's windows, p = ceil(n / world);
    slots past the end repeat real windows flagged as padding (their dfs are zeroed, so masked metrics
    are identical for any number of processes). Step k holds positions [k*B, (k+1)*B) of every
    session that still has some, so all ranks run the same number of steps and a batch may hold a
    subset of the sessions (the largest sessions' windows fill the last steps).
    """

    def __init__(self, sizes: Sequence[int], batch_size: int) -> None:
        if batch_size < 1:
            raise UserError(f"data.eval_batch_size={batch_size}: must be >= 1.")
        self.sizes = [int(size) for size in sizes]
        self.batch_size = int(batch_size)

    def _per_rank(self, world: int) -> list[int]:
        return [math.ceil(size / world) for size in self.sizes]

    def __len__(self) -> int:
        per_rank = self._per_rank(loading._rank_and_world()[1])
        return max((math.ceil(count / self.batch_size) for count in per_rank), default=0)

    def __iter__(self) -> Iterator[list[SessionDraw]]:
        rank, world = loading._rank_and_world()
        shards = []
        for size, count in zip(self.sizes, self._per_rank(world), strict=True):
            slots = np.arange(rank * count, (rank + 1) * count, dtype=np.int64)
            shards.append((slots % max(size, 1), slots >= size))
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield [
                SessionDraw(
                    i, positions[start : start + self.batch_size], padding[start : start + self.batch_size]
                )
                for i, (positions, padding) in enumerate(shards)
                if start < len(positions)
            ]
