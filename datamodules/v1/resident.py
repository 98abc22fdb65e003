"""The device-resident data path: every session's arrays live on the device, batches are index lists.

The loader yields only the sample frames t (and the padding flags of evaluation windows), a few hundred
bytes per step; `MultiDatasetDM.on_after_batch_transfer` turns them into the same batch dict the CPU
path builds, by tensor indexing on the device: `frames[rows[:, None] - arange(L-1, -1, -1)]`. The
samplers, the resume logic and the batch keys are those of the CPU path. It works on any device, so
tests and benchmarks compare both paths on CPU.

Only the frames of the selected stimulus types are kept ("rows": their timeline indices in order);
`row_of[t]` maps a timeline index to its row. A window never leaves its trial, and a trial lies in one
stimulus block, so the rows of a window's lags are consecutive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from datamodules.v1.windows import SessionData, SessionDraw, WindowDataset

RESIDENT_T = "resident_t"  # key of the sample frames in an index batch
RESIDENT_PADDING = "resident_padding"  # key of the padding flags; present only in evaluation batches


def _rows_of(data: SessionData) -> np.ndarray:
    return np.concatenate([np.arange(start, stop) for _, start, stop in data.frames.spans])


class ResidentSession:
    """One session's tensors, restricted to the selected types' frames and the config's units."""

    def __init__(self, data: SessionData) -> None:
        session, columns, rows = data.session, data.columns, _rows_of(data)
        self.lags = data.lags
        row_of = np.full(data.num_frames, -1, dtype=np.int64)
        row_of[rows] = np.arange(len(rows))
        self.tensors: dict[str, torch.Tensor] = {
            "row_of": torch.from_numpy(row_of),
            "frames": torch.from_numpy(np.concatenate(data.frames.blocks)),
            "robs": torch.from_numpy(np.ascontiguousarray(session.robs[rows][:, columns])),
            "dfs": torch.from_numpy(np.ascontiguousarray(session.dfs[rows][:, columns])),
            "eyepos": torch.from_numpy(np.asarray(session.eyepos[rows], dtype=np.float32)),
            "trial": torch.from_numpy(session.trial_inds[rows].astype(np.int64)),
        }
        if data.train_targets == "rates":  # training windows read the true rates as `robs`
            self.tensors["train_robs"] = torch.from_numpy(
                np.ascontiguousarray(data.targets(evaluation=False)[rows][:, columns])
            )
        if session.behavior is not None:
            self.tensors["behavior"] = torch.from_numpy(np.asarray(session.behavior[rows], dtype=np.float32))
        for key, truth in (("rates", "rates"), ("achievable", "achievable_rates")):
            if session.has_truth_item(truth):
                self.tensors[key] = torch.from_numpy(
                    np.asarray(data.truth(truth)[rows][:, columns], np.float32)
                )

    @property
    def nbytes(self) -> int:
        return sum(tensor.numel() * tensor.element_size() for tensor in self.tensors.values())

    def to(self, device: torch.device) -> ResidentSession:
        self.tensors = {key: tensor.to(device) for key, tensor in self.tensors.items()}
        return self

    def gather(self, t: torch.Tensor, padding: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The batch dict of windows ending at frames t; evaluation fields when `padding` is given."""
        data = self.tensors
        if data["row_of"].device != t.device:
            self.to(t.device)  # first use on this device: move once
            data = self.tensors
        rows = data["row_of"][t]
        lag_rows = rows[:, None] - torch.arange(self.lags - 1, -1, -1, device=t.device)
        item = {
            "stim": data["frames"][lag_rows],
            "robs": data["train_robs" if padding is None and "train_robs" in data else "robs"][rows].float(),
            "dfs": data["dfs"][rows].float(),
            "eyepos": data["eyepos"][lag_rows],
        }
        if "behavior" in data:
            item["behavior"] = data["behavior"][rows]
        if padding is None:
            return item
        item["dfs"] = item["dfs"] * (~padding)[:, None]
        item.update({key: data[key][rows] for key in ("rates", "achievable") if key in data})
        item["trial"] = torch.where(padding, -1, data["trial"][rows])
        item["frame"] = t
        return item


class ResidentSessions:
    """The resident tensors of every session, by name."""

    def __init__(self, sessions: Sequence[SessionData]) -> None:
        self.sessions = {data.name: ResidentSession(data) for data in sessions}

    @property
    def nbytes(self) -> int:
        return sum(session.nbytes for session in self.sessions.values())

    def to(self, device: torch.device | str) -> ResidentSessions:
        for session in self.sessions.values():
            session.to(torch.device(device))
        return self

    def gather_batch(self, batch: Mapping[str, Mapping[str, torch.Tensor]]) -> dict[str, dict[str, Any]]:
        """An index batch {session: {resident_t, [resident_padding]}} -> the full batch dict."""
        return {
            name: self.sessions[name].gather(item[RESIDENT_T], item.get(RESIDENT_PADDING))
            for name, item in batch.items()
        }


def is_index_batch(batch: Mapping[str, Mapping[str, Any]]) -> bool:
    return any(RESIDENT_T in item for item in batch.values())


class IndexDataset(WindowDataset):
    """A `WindowDataset` that yields the sample frames t instead of the windows (resident path)."""

    def _fetch(self, draw: SessionDraw) -> tuple[str, dict[str, Any]]:
        t = self.samples[draw.session][np.asarray(draw.positions, dtype=np.int64)]
        item: dict[str, Any] = {RESIDENT_T: t}
        if self.evaluation:
            item[RESIDENT_PADDING] = (
                np.zeros(len(t), dtype=bool) if draw.padding is None else np.asarray(draw.padding, dtype=bool)
            )
        return self.sessions[draw.session].name, item
