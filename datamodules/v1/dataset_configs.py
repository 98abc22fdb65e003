"""Dataset configs in the seed's shape: a folder with `parent.yaml` plus one YAML per session.

`parent.yaml` holds what all sessions share (stimulus types, session order, sampling rate, lags,
frame shape, transforms, data filters, split names, and how to simulate missing sessions);
`<session>.yaml` names the session folder and its unit ids (the units the model reads out, in order).
`sessions` picks sessions by name (e.g. one session for a single-session baseline) and
`max_datasets` then keeps the first K of them, in the parent's order.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from training.toolkit.errors import UserError

PARENT_FILE = "parent.yaml"
PARENT_KEYS = ("types", "sessions", "sampling", "lags", "frame_shape")


class DatasetConfigError(UserError):
    """A dataset-config folder or file that is missing or malformed."""


@dataclass(frozen=True)
class SessionConfig:
    name: str
    path: str  # session folder; relative paths are relative to the data directory
    unit_ids: tuple[int, ...]
    subject: str | None = None

    @property
    def num_units(self) -> int:
        return len(self.unit_ids)

    def folder(self, data_dir: str | os.PathLike) -> Path:
        path = Path(self.path)
        return path if path.is_absolute() else Path(data_dir) / path


@dataclass(frozen=True)
class DatasetConfigs:
    path: Path
    parent: dict[str, Any]
    sessions: list[SessionConfig]
    hash: str = field(repr=False)

    @property
    def types(self) -> list[str]:
        return list(self.parent["types"])

    @property
    def lags(self) -> int:
        return int(self.parent["lags"])

    @property
    def frame_shape(self) -> tuple[int, int]:
        height, width = self.parent["frame_shape"]
        return int(height), int(width)

    @property
    def sampling_rate_hz(self) -> float:
        return float(self.parent["sampling"]["rate_hz"])

    @property
    def session_names(self) -> list[str]:
        return [session.name for session in self.sessions]

    def session(self, name: str) -> SessionConfig:
        return next(session for session in self.sessions if session.name == name)


def _read_yaml(path: Path) -> tuple[dict[str, Any], bytes]:
    if not path.is_file():
        raise DatasetConfigError(f"{path} does not exist; each session in parent.yaml needs its own YAML.")
    raw = path.read_bytes()
    try:
        content = yaml.safe_load(raw) or {}
    except yaml.YAMLError as err:
        raise DatasetConfigError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(content, dict):
        raise DatasetConfigError(f"{path} must hold a mapping, not {type(content).__name__}.")
    return content, raw


def load_dataset_configs(
    path: str | os.PathLike, max_datasets: int | None = None, sessions: Sequence[str] | None = None
) -> DatasetConfigs:
    """Read `path/parent.yaml` and the YAMLs of the chosen sessions (`sessions`, then the first `max_datasets`)."""
    folder = Path(path)
    if not (folder / PARENT_FILE).is_file():
        raise DatasetConfigError(
            f"dataset_configs_path={folder} has no {PARENT_FILE}. Point data.dataset_configs_path at a folder "
            "like conf/v1_datasets/t1_small, or write one with `python -m datamodules.v1 simulate ...`."
        )
    parent, parent_raw = _read_yaml(folder / PARENT_FILE)
    missing = [key for key in PARENT_KEYS if key not in parent]
    if missing:
        raise DatasetConfigError(f"{folder / PARENT_FILE} lacks {missing}; see docs/v1.md (dataset configs).")
    names = list(parent["sessions"])
    if sessions is not None:
        unknown = [name for name in sessions if name not in names]
        if unknown:
            raise DatasetConfigError(
                f"sessions={list(sessions)}: {unknown} are not in {folder / PARENT_FILE}; it lists {names}."
            )
        names = [name for name in names if name in set(sessions)]
    if max_datasets is not None:
        if max_datasets < 1:
            raise DatasetConfigError(f"max_datasets={max_datasets}: must be >= 1 (or null for all sessions).")
        names = names[:max_datasets]
    # The hash covers what was selected, so it changes when the sessions a model reads out change.
    digest = hashlib.sha256(parent_raw)
    sessions = []
    for name in names:
        content, raw = _read_yaml(folder / f"{name}.yaml")
        digest.update(raw)
        if content.get("session", name) != name or "unit_ids" not in content:
            raise DatasetConfigError(
                f"{folder / (name + '.yaml')} must have `session: {name}` and a `unit_ids` list."
            )
        sessions.append(
            SessionConfig(
                name=name,
                path=str(content.get("path", name)),
                unit_ids=tuple(int(unit) for unit in content["unit_ids"]),
                subject=content.get("subject"),
            )
        )
    return DatasetConfigs(path=folder, parent=parent, sessions=sessions, hash=digest.hexdigest()[:16])


def write_dataset_configs(
    folder: str | os.PathLike, parent: dict[str, Any], sessions: list[SessionConfig]
) -> Path:
    """Write `parent.yaml` (with the session order) and one YAML per session into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    parent = {**parent, "sessions": [session.name for session in sessions]}
    (folder / PARENT_FILE).write_text(yaml.safe_dump(parent, sort_keys=False))
    for session in sessions:
        content = {"session": session.name, "subject": session.subject, "path": session.path}
        content["unit_ids"] = list(session.unit_ids)
        (folder / f"{session.name}.yaml").write_text(yaml.safe_dump(content, sort_keys=False, width=100))
    return folder
