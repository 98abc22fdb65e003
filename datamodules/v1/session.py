"""The on-disk format of one recording session (real or simulated) and its memory-mapped reader.

A session is a folder of `.npy` arrays plus `meta.json` (see docs/v1.md for the full description):
`stim_<type>.npy` uint8 (T_type, H, W) per stimulus type, `robs.npy` (T, N) spike counts,
`dfs.npy` (T, N) validity, `eyepos.npy` (T, 2) measured gaze in degrees, `trial_inds.npy` (T,),
`saccade_onsets.npy` (K,) and optionally `behavior.npy` (T, D). The session timeline is the
concatenation of the stimulus-type blocks named in `meta["stim_types"]`. Simulated sessions add
`truth/` (true rates, gaze, calibration field, unit parameters), which only evaluation reads.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from training.toolkit.errors import UserError

SCHEMA_VERSION = 1
META_FILE = "meta.json"
TRUTH_DIR = "truth"
REQUIRED_ARRAYS = ("robs", "dfs", "eyepos", "trial_inds", "saccade_onsets")
REQUIRED_META = (
    "schema_version",
    "session",
    "sampling_rate_hz",
    "pixels_per_degree",
    "frame_shape",
    "num_frames",
    "unit_ids",
    "stim_types",
    "trials",
    "stim_stats",
)


class SessionFormatError(UserError):
    """A session folder that does not follow the format; the message names the file and the fix."""


def write_session(
    path: str | os.PathLike,
    *,
    meta: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
    truth: Mapping[str, Any] | None = None,
) -> Path:
    """Write a session folder: `arrays` by name (`stim_<type>`, `robs`, ...), `meta.json` last.

    `truth` values that are arrays become `truth/<name>.npy`, dicts/lists become `truth/<name>.json`
    and `(name, dict_of_arrays)` entries ending in `.npz` become compressed archives. `meta.json` is
    written last (atomically), so a folder without it is an interrupted write, never a session.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", np.ascontiguousarray(array))
    if truth:
        truth_dir = folder / TRUTH_DIR
        truth_dir.mkdir(exist_ok=True)
        for name, value in truth.items():
            if name.endswith(".npz"):
                np.savez_compressed(truth_dir / name, **value)
            elif isinstance(value, np.ndarray):
                np.save(truth_dir / f"{name}.npy", value)
            else:
                (truth_dir / f"{name}.json").write_text(json.dumps(value, indent=1))
    meta = {"schema_version": SCHEMA_VERSION, **meta}
    temporary = folder / f".{META_FILE}.tmp"
    temporary.write_text(json.dumps(meta, indent=1))
    temporary.replace(folder / META_FILE)
    Session(folder)  # validate what was written
    return folder


class Session:
    """Memory-mapped view of a session folder; arrays are opened lazily and never copied whole."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        meta_path = self.path / META_FILE
        if not meta_path.is_file():
            raise SessionFormatError(
                f"{meta_path} does not exist: {self.path} is not a session folder (or its write was "
                "interrupted). Re-create it (`python -m datamodules.v1 simulate ...` for simulated data) "
                "or fix the session's `path` in its dataset config."
            )
        try:
            self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        except json.JSONDecodeError as err:
            raise SessionFormatError(
                f"{meta_path} is not valid JSON ({err}); re-create the session."
            ) from err
        self._validate()

    def _validate(self) -> None:
        missing = [key for key in REQUIRED_META if key not in self.meta]
        if missing:
            raise SessionFormatError(
                f"{self.path / META_FILE} lacks the keys {missing}; see docs/v1.md (session format)."
            )
        version = self.meta["schema_version"]
        if version != SCHEMA_VERSION:
            raise SessionFormatError(
                f"{self.path / META_FILE} has schema_version {version}; this code reads version "
                f"{SCHEMA_VERSION}. Re-create the session with this version of the simulator/converter."
            )
        for name in (*REQUIRED_ARRAYS, *(spec["file"][:-4] for spec in self.meta["stim_types"].values())):
            if not (self.path / f"{name}.npy").is_file():
                raise SessionFormatError(f"{self.path / (name + '.npy')} is missing from the session.")
        total, units = self.num_frames, self.num_units
        for name, shape in (("robs", (total, units)), ("dfs", (total, units)), ("eyepos", (total, 2))):
            if self._array(name).shape != shape:
                raise SessionFormatError(
                    f"{self.path / (name + '.npy')} has shape {self._array(name).shape}, expected {shape} "
                    f"(num_frames={total}, {units} unit_ids in meta.json)."
                )
        covered = sorted((spec["start"], spec["stop"]) for spec in self.meta["stim_types"].values())
        if (
            covered[0][0] != 0
            or covered[-1][1] != total
            or any(a[1] != b[0] for a, b in itertools.pairwise(covered))
        ):
            raise SessionFormatError(
                f"{self.path / META_FILE}: stim_types blocks {covered} must tile the timeline 0..{total}."
            )
        for kind, spec in self.meta["stim_types"].items():
            frames = self.stim(kind)
            expected = (spec["stop"] - spec["start"], *self.frame_shape)
            if frames.dtype != np.uint8 or frames.shape != expected:
                raise SessionFormatError(
                    f"{self.path / spec['file']} is {frames.dtype} {frames.shape}; expected uint8 {expected}."
                )

    def _array(self, name: str, folder: Path | None = None) -> np.ndarray:
        return np.load((folder or self.path) / f"{name}.npy", mmap_mode="r")

    @property
    def name(self) -> str:
        return str(self.meta["session"])

    @property
    def num_frames(self) -> int:
        return int(self.meta["num_frames"])

    @property
    def unit_ids(self) -> list[int]:
        return [int(unit) for unit in self.meta["unit_ids"]]

    @property
    def num_units(self) -> int:
        return len(self.meta["unit_ids"])

    @property
    def frame_shape(self) -> tuple[int, int]:
        height, width = self.meta["frame_shape"]
        return int(height), int(width)

    @property
    def trials(self) -> list[dict[str, Any]]:
        return list(self.meta["trials"])

    @property
    def stim_types(self) -> list[str]:
        return list(self.meta["stim_types"])

    def stim(self, kind: str) -> np.ndarray:
        """The uint8 (T_type, H, W) frames of one stimulus type (memory-mapped)."""
        if kind not in self.meta["stim_types"]:
            raise SessionFormatError(
                f"Session {self.name} ({self.path}) has no stimulus type {kind!r}; it has {self.stim_types}."
            )
        return self._array(self.meta["stim_types"][kind]["file"][:-4])

    @cached_property
    def robs(self) -> np.ndarray:
        return self._array("robs")

    @cached_property
    def dfs(self) -> np.ndarray:
        return self._array("dfs")

    @cached_property
    def eyepos(self) -> np.ndarray:
        return self._array("eyepos")

    @cached_property
    def trial_inds(self) -> np.ndarray:
        return self._array("trial_inds")

    @cached_property
    def saccade_onsets(self) -> np.ndarray:
        return self._array("saccade_onsets")

    @cached_property
    def behavior(self) -> np.ndarray | None:
        return self._array("behavior") if (self.path / "behavior.npy").is_file() else None

    @property
    def has_truth(self) -> bool:
        return (self.path / TRUTH_DIR).is_dir()

    def truth(self, name: str) -> Any:
        """A ground-truth item: `rates`, `gaze`, `achievable_rates` (.npy), `units` (.json), `calibration` (.npz)."""
        folder = self.path / TRUTH_DIR
        for suffix, load in (
            (".npy", lambda p: np.load(p, mmap_mode="r")),
            (".json", lambda p: json.loads(p.read_text())),
            (".npz", lambda p: dict(np.load(p))),
        ):
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file():
                return load(candidate)
        raise SessionFormatError(
            f"Session {self.name} has no ground truth {name!r} under {folder} (only simulated sessions do)."
        )

    def has_truth_item(self, name: str) -> bool:
        return any((self.path / TRUTH_DIR / f"{name}{s}").is_file() for s in (".npy", ".json", ".npz"))
