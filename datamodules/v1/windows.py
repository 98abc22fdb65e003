"""Lagged windows of recording sessions: which frames are samples, and fetching batches of them.

A sample is a frame t of a selected stimulus type and split whose `lags` frames t-lags+1..t all lie
inside one trial, so no window mixes two trials or the gap between them. A fetched window holds the
uint8 frames of those lags (index L-1 is frame t), the responses at t of the units the dataset config
names (in its order), their validity, the gaze of every lag frame and, when present, the behaviour.
Evaluation windows add the true rates (simulated sessions), the trial id and the frame index.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from datamodules.v1.session import Session, SessionFormatError
from training.toolkit.errors import UserError

CONTRAST_CACHE_DIR = ".cache"
_CHUNK_FRAMES = 4096  # frames per chunk when scanning a whole stimulus block


class SessionDraw(NamedTuple):
    """The samples of one session in a batch: positions in its window list, and which are DDP padding."""

    session: int
    positions: np.ndarray  # int64
    padding: np.ndarray | None = None  # bool; a padding sample repeats a real one with its dfs zeroed


def unit_columns(available: Sequence[int], wanted: Sequence[int], where: str) -> np.ndarray:
    """Columns of the `wanted` unit ids among the session's `available` ones (meta.json order)."""
    column_of = {int(unit): column for column, unit in enumerate(available)}
    missing = [int(unit) for unit in wanted if int(unit) not in column_of]
    if missing:
        raise SessionFormatError(
            f"{where}: unit_ids {missing} are not in the session's meta.json unit_ids "
            f"({len(column_of)} units). Remove them from the dataset config or re-create the session."
        )
    return np.array([column_of[int(unit)] for unit in wanted], dtype=np.int64)


def window_frames(
    trials: Sequence[Mapping[str, Any]],
    types: Sequence[str],
    split: str,
    lags: int,
    fraction: float = 1.0,
) -> np.ndarray:
    """Sample frames t (sorted, int64) of the trials of `types` in `split` with all lags inside the trial.

    `fraction` keeps the first share of those trials (by start frame), at least one.
    """
    chosen = sorted(
        (trial for trial in trials if trial["type"] in types and trial["split"] == split),
        key=lambda trial: trial["start"],
    )
    if fraction < 1.0 and chosen:
        chosen = chosen[: max(1, round(fraction * len(chosen)))]
    ranges = [np.arange(trial["start"] + lags - 1, trial["stop"], dtype=np.int64) for trial in chosen]
    return np.concatenate(ranges) if ranges else np.zeros(0, dtype=np.int64)


class FrameSource:
    """The frames of the selected stimulus types, addressed by timeline index.

    Blocks are the memory-mapped `stim_<type>.npy` arrays or, with `cones`, the cone-adapted frames of
    `datamodules.v1.cones.cones_frames` (computed and cached on disk once, here in the main process).
    They are reopened lazily, so pickling the source for a spawned worker never copies them.
    """

    def __init__(self, session: Session, types: Sequence[str], cones: Mapping[str, Any] | None = None):
        self.path = session.path
        self.spans = [
            (
                kind,
                int(session.meta["stim_types"][kind]["start"]),
                int(session.meta["stim_types"][kind]["stop"]),
            )
            for kind in session.stim_types
            if kind in types
        ]
        self.frame_shape = session.frame_shape
        self.cones = None if cones is None else dict(cones)
        self._blocks: list[np.ndarray] | None = None
        for (kind, start, stop), block in zip(self.spans, self.blocks, strict=True):
            if block.shape != (stop - start, *self.frame_shape):
                raise SessionFormatError(
                    f"The {'cone-adapted ' if self.cones is not None else ''}frames of {kind!r} in {self.path} "
                    f"have shape {block.shape}; expected {(stop - start, *self.frame_shape)}."
                )

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_blocks": None}  # memory maps: reopened in the worker

    @property
    def blocks(self) -> list[np.ndarray]:
        if self._blocks is None:
            session = Session(self.path)
            if self.cones is None:
                self._blocks = [session.stim(kind) for kind, _, _ in self.spans]
            else:
                from datamodules.v1.cones import cones_frames  # optional preprocessing, imported when used

                self._blocks = [cones_frames(session, kind, **self.cones) for kind, _, _ in self.spans]
        return self._blocks

    @property
    def dtype(self) -> np.dtype:
        return self.blocks[0].dtype

    def gather(self, indices: np.ndarray) -> np.ndarray:
        """Frames at timeline `indices` (any shape) -> (*indices.shape, H, W); each frame is read once."""
        unique, inverse = np.unique(indices.ravel(), return_inverse=True)
        frames = np.empty((len(unique), *self.frame_shape), dtype=self.dtype)
        for (_, start, stop), block in zip(self.spans, self.blocks, strict=True):
            low, high = np.searchsorted(unique, [start, stop])
            if high > low:
                frames[low:high] = block[unique[low:high] - start]
        return frames[inverse].reshape(*indices.shape, *self.frame_shape)

    def _chunks(self):
        for (_, start, _), block in zip(self.spans, self.blocks, strict=True):
            for offset in range(0, len(block), _CHUNK_FRAMES):
                yield start + offset, np.asarray(block[offset : offset + _CHUNK_FRAMES], dtype=np.float32)

    def pixel_stats(self) -> tuple[float, float]:
        """Mean and standard deviation of every pixel of the selected types (for cone-adapted frames)."""
        total = total_sq = count = 0.0
        for _, chunk in self._chunks():
            values = chunk.astype(np.float64)
            total, total_sq, count = total + values.sum(), total_sq + (values**2).sum(), count + values.size
        mean = total / count
        return float(mean), float(math.sqrt(max(total_sq / count - mean**2, 1e-12)))

    def rms_contrast(self, num_frames: int) -> np.ndarray:
        """Per timeline frame: the standard deviation of its pixels, in units of the uint8 range (std/255).

        Frames of unselected types are NaN. Cached in `<session>/.cache/` (keyed by meta.json and the
        cones parameters) when the session folder is writable.
        """
        key = hashlib.sha256((self.path / "meta.json").read_bytes())
        key.update(json.dumps([self.spans, self.cones], sort_keys=True, default=str).encode())
        cache = self.path / CONTRAST_CACHE_DIR / f"rms_contrast-{key.hexdigest()[:16]}.npy"
        if cache.is_file():
            return np.load(cache)
        scale = 1 / 255 if self.dtype == np.uint8 else 1.0
        contrast = np.full(num_frames, np.nan, dtype=np.float32)
        for start, chunk in self._chunks():
            contrast[start : start + len(chunk)] = chunk.reshape(len(chunk), -1).std(axis=1) * scale
        try:
            cache.parent.mkdir(exist_ok=True)
            temporary = cache.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(temporary, contrast)
            temporary.replace(cache)  # atomic: ranks computing it at once never see half a file
        except OSError:
            pass  # a read-only session folder: keep the values in memory only
        return contrast


class SessionData:
    """One session as the model sees it: selected types, the config's units, `lags`-frame windows."""

    def __init__(
        self,
        session: Session,
        unit_ids: Sequence[int],
        types: Sequence[str],
        lags: int,
        cones: Mapping[str, Any] | None = None,
        where: str = "",
        train_targets: str = "spikes",
    ) -> None:
        self.name = session.name
        self.path = session.path
        self.train_targets = train_targets  # "rates": training windows carry the true rates as `robs`
        self.lags = int(lags)
        self.types = list(types)
        self.num_frames = session.num_frames
        self.columns = unit_columns(session.unit_ids, unit_ids, where or f"session {session.name}")
        self.frames = FrameSource(session, self.types, cones)
        self.stim_stats = (
            self.frames.pixel_stats()
            if cones is not None
            else (float(session.meta["stim_stats"]["mean"]), float(session.meta["stim_stats"]["std"]))
        )
        self.has_truth = session.has_truth
        if train_targets == "rates" and not self.has_truth:
            raise UserError(
                f"{where or session.name}: data.train_targets=rates needs the true rates of a simulated session "
                "(truth/); this session has none: train on spikes (data.train_targets=spikes)."
            )
        self.has_achievable = session.has_truth_item("achievable_rates")
        self.behavior_dim = 0 if session.behavior is None else int(session.behavior.shape[1])
        self.trials = session.trials
        self._session: Session | None = session
        self._truth: dict[str, np.ndarray] = {}
        self._contrast: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_session": None, "_truth": {}}  # memory maps: reopened in the worker

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = Session(self.path)
        return self._session

    @property
    def num_units(self) -> int:
        return len(self.columns)

    def truth(self, name: str) -> np.ndarray:
        if name not in self._truth:
            self._truth[name] = self.session.truth(name)
        return self._truth[name]

    def windows(self, split: str, fraction: float = 1.0) -> np.ndarray:
        """Sample frames t of trial split `split` (the label in meta.json)."""
        return window_frames(self.trials, self.types, split, self.lags, fraction)

    def lag_frames(self, t: np.ndarray) -> np.ndarray:
        """(B, L) timeline indices of each window, ascending in time; column L-1 is t."""
        return t[:, None] - np.arange(self.lags - 1, -1, -1, dtype=np.int64)

    def rms_contrast(self) -> np.ndarray:
        if self._contrast is None:
            self._contrast = self.frames.rms_contrast(self.num_frames)
        return self._contrast

    def mean_rates(self, t: np.ndarray) -> np.ndarray:
        """Per unit mean spike count per bin over valid entries at frames t (float64, (N,)).

        A unit without any valid entry gets the session's pooled mean, so a readout bias built from it
        stays finite.
        """
        spikes = np.zeros(self.num_units)
        valid = np.zeros(self.num_units)
        for start in range(0, len(t), 65536):
            rows = t[start : start + 65536]
            mask = self.session.dfs[rows][:, self.columns].astype(np.float64)
            spikes += (self.session.robs[rows][:, self.columns] * mask).sum(axis=0)
            valid += mask.sum(axis=0)
        pooled = spikes.sum() / max(valid.sum(), 1.0)
        return np.where(valid > 0, spikes / np.maximum(valid, 1.0), pooled)

    def targets(self, evaluation: bool) -> np.ndarray:
        """What a window's `robs` holds: the spikes, or in training with train_targets=rates the true rates."""
        return self.truth("rates") if self.train_targets == "rates" and not evaluation else self.session.robs

    def fetch(
        self, t: np.ndarray, evaluation: bool, padding: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """The batch dict of windows ending at frames t (numpy; `group_collate` makes tensors)."""
        session, columns, lag_frames = self.session, self.columns, self.lag_frames(t)
        item = {
            "stim": self.frames.gather(lag_frames),
            "robs": self.targets(evaluation)[t][:, columns].astype(np.float32),
            "dfs": session.dfs[t][:, columns].astype(np.float32),
            "eyepos": np.asarray(session.eyepos[lag_frames], dtype=np.float32),
        }
        if session.behavior is not None:
            item["behavior"] = np.asarray(session.behavior[t], dtype=np.float32)
        if evaluation:
            if self.has_truth:
                item["rates"] = np.asarray(self.truth("rates")[t][:, columns], dtype=np.float32)
            if self.has_achievable:
                item["achievable"] = np.asarray(self.truth("achievable_rates")[t][:, columns], np.float32)
            item["trial"] = session.trial_inds[t].astype(np.int64)
            item["frame"] = t.astype(np.int64)
        if padding is not None and padding.any():
            item["dfs"][padding] = 0.0
            if evaluation:
                item["trial"][padding] = -1
        return item


class WindowDataset(Dataset):
    """The windows of several sessions for one split; index i is the i-th window in session order.

    Batch samplers pass lists of `SessionDraw`; a plain DataLoader passes integer indices. Either way
    `__getitems__` returns one `(session name, fields)` chunk per session, fetched vectorised.
    """

    def __init__(
        self, sessions: Sequence[SessionData], samples: Sequence[np.ndarray], evaluation: bool
    ) -> None:
        self.sessions = list(sessions)
        self.samples = [np.asarray(t, dtype=np.int64) for t in samples]
        self.evaluation = evaluation
        self.offsets = np.cumsum([0] + [len(t) for t in self.samples])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def sizes(self) -> list[int]:
        return [len(t) for t in self.samples]

    def __getitem__(self, index: int) -> list[tuple[str, dict[str, Any]]]:
        return self.__getitems__([index])

    def __getitems__(self, keys: Sequence[Any]) -> list[tuple[str, dict[str, Any]]]:
        return [self._fetch(draw) for draw in self._as_draws(keys)]

    def _as_draws(self, keys: Sequence[Any]) -> list[SessionDraw]:
        if not keys or isinstance(keys[0], SessionDraw):
            return list(keys)
        indices = np.asarray(keys, dtype=np.int64)
        if indices.min() < 0 or indices.max() >= len(self):
            raise IndexError(f"window index out of range 0..{len(self) - 1}")
        owner = np.searchsorted(self.offsets, indices, side="right") - 1
        return [
            SessionDraw(int(session), indices[owner == session] - self.offsets[session])
            for session in np.unique(owner)
        ]

    def _fetch(self, draw: SessionDraw) -> tuple[str, dict[str, Any]]:
        data = self.sessions[draw.session]
        t = self.samples[draw.session][np.asarray(draw.positions, dtype=np.int64)]
        return data.name, data.fetch(t, self.evaluation, draw.padding)


def group_collate(chunks: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, dict[str, torch.Tensor]]:
    """`(session, fields)` chunks -> `{session: {key: Tensor}}`, chunks of one session concatenated.

    Sessions keep the order of their first chunk (the dataset config order for the batch samplers).
    """
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for name, fields in chunks:
        grouped.setdefault(name, []).append(fields)
    return {
        name: {key: _concat([part[key] for part in parts]) for key in parts[0]}
        for name, parts in grouped.items()
    }


def _concat(parts: list[Any]) -> torch.Tensor:
    tensors = [torch.as_tensor(part) for part in parts]
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors)
