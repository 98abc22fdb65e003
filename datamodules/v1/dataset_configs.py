"""Dataset configs in the seed's shape: a folder with `parent.yaml` plus one YAML per session.

`parent.yaml` holds what all sessions share (stimulus types, session order, sampling rate, lags,
frame shape, transforms, data filters, split names, and how to simulate missing sessions);
`<session>.yaml` names the session folder and its unit ids (the units the model reads out, in order).
`sessions` picks sessions by name (e.g. one session for a single-session baseline) and
`max_datasets` then keeps the first K of them, in the parent's order.

Where they come from (`load_dataset_configs`): a folder (`dataset_configs_path`, e.g. a lab's own
recordings), read as it is; or a simulated dataset named by `dataset` (`<tier>_<size>`, e.g. `t1_small`),
computed from the simulator's tier definitions — the same files the simulator writes beside the
sessions, in `<data_dir>/v1/dataset_configs/<name>/`. A path to that location before it was written, or
to the repository's former `conf/v1_datasets/<name>` (old checkpoints' stored configs name it), stands
for the simulated dataset of that name.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from training.toolkit.errors import UserError

log = logging.getLogger(__name__)

PARENT_FILE = "parent.yaml"
PARENT_KEYS = ("types", "sessions", "sampling", "lags", "frame_shape")
GENERATED_DIR = (
    "v1",
    "dataset_configs",
)  # <data_dir>/v1/dataset_configs/<name>: the simulator writes them there
SHIPPED_DIR = ("conf", "v1_datasets")  # where the repository shipped them until they were generated


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
    dataset: str | None = None  # the simulated dataset's name when computed from the tier definitions

    @property
    def where(self) -> str:
        """For messages: `the simulated dataset <name>` or `dataset_configs_path=<folder>`."""
        return (
            f"the simulated dataset {self.dataset}" if self.dataset else f"dataset_configs_path={self.path}"
        )

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


def _parse_yaml(where: Path, raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        raise DatasetConfigError(f"{where} does not exist; each session in parent.yaml needs its own YAML.")
    try:
        content = yaml.safe_load(raw) or {}
    except yaml.YAMLError as err:
        raise DatasetConfigError(f"{where} is not valid YAML: {err}") from err
    if not isinstance(content, dict):
        raise DatasetConfigError(f"{where} must hold a mapping, not {type(content).__name__}.")
    return content


class _Source:
    """The files of one dataset-config folder: read from disk, or computed for a simulated dataset."""

    def __init__(self, folder: Path, files: Mapping[str, bytes] | None = None, dataset: str | None = None):
        self.folder, self.files, self.dataset = folder, files, dataset

    def read(self, name: str) -> bytes | None:
        if self.files is not None:
            return self.files.get(name)
        path = self.folder / name
        return path.read_bytes() if path.is_file() else None


def simulated_name(path: str | os.PathLike) -> str | None:
    """The simulated dataset that a dataset-config path without parent.yaml stands for: the folder the
    simulator writes (`.../v1/dataset_configs/<name>`) before it was written, or the repository's former
    `.../conf/v1_datasets/<name>` named by old checkpoints' stored configs; None for any other path."""
    folder = Path(path).expanduser()
    if (folder / PARENT_FILE).is_file() or folder.parent.parts[-2:] not in (GENERATED_DIR, SHIPPED_DIR):
        return None
    return folder.name if _simulated_files(folder.name) is not None else None


@functools.lru_cache(maxsize=64)
def _simulated_files(name: str) -> Mapping[str, bytes] | None:
    from datamodules.v1.simulator.configs import simulated_dataset  # numpy; only for simulated datasets

    found = simulated_dataset(name)
    return dataset_config_files(*found) if found is not None else None


def _unknown_dataset(name: str) -> DatasetConfigError:
    from datamodules.v1.simulator.configs import dataset_names

    names = dataset_names()
    close = difflib.get_close_matches(str(name), names, n=3)
    return DatasetConfigError(
        f"dataset={name} (v1.dataset) is not a simulated dataset"
        + (f" (did you mean {' or '.join(close)}?)" if close else "")
        + f"; the simulated ones are {', '.join(names)} (`_seed<k>` after the size for another seed). "
        "For your own sessions give data.dataset_configs_path=FOLDER (parent.yaml + one YAML per session)."
    )


def _source(
    path: str | os.PathLike | None, dataset: str | None, data_dir: str | os.PathLike | None
) -> _Source:
    """Where the configs are read from: the folder `path`, else the simulated dataset `dataset`."""
    if path is not None:
        folder = Path(path).expanduser()
        name = simulated_name(folder)
        if name is None:
            return _Source(folder)
        if folder.parent.parts[-2:] == SHIPPED_DIR:
            log.info("dataset_configs_path=%s (no longer shipped) is the simulated dataset %s.", folder, name)
        dataset = name
    if dataset is None:
        raise DatasetConfigError(
            "No dataset configs: set v1.dataset (a simulated dataset, e.g. t1_small) or "
            "data.dataset_configs_path=FOLDER (parent.yaml + one YAML per session)."
        )
    files = _simulated_files(str(dataset))
    if files is None:
        raise _unknown_dataset(str(dataset))
    home = Path(data_dir) if data_dir is not None else Path()
    return _Source(home.joinpath(*GENERATED_DIR, str(dataset)), files, str(dataset))


def _missing_parent(folder: Path) -> DatasetConfigError:
    return DatasetConfigError(
        f"data.dataset_configs_path={folder} holds no {PARENT_FILE}: point it at a dataset-config folder "
        "(parent.yaml + one YAML per session, e.g. one written by `python -m datamodules.v1 configs ...`), "
        "or leave it null and name a simulated dataset with v1.dataset=<tier>_<size> (e.g. t1_small)."
    )


def dataset_parent(path: str | os.PathLike | None = None, dataset: str | None = None) -> dict[str, Any]:
    """Only the parent.yaml of `load_dataset_configs(path, dataset=dataset)` (what a model config reads
    at compose time, e.g. `lags`, through the `v1.dataset_fact` resolver)."""
    source = _source(path, dataset, None)
    raw = source.read(PARENT_FILE)
    if raw is None:
        raise _missing_parent(source.folder)
    return _parse_yaml(source.folder / PARENT_FILE, raw)


def load_dataset_configs(
    path: str | os.PathLike | None = None,
    max_datasets: int | None = None,
    sessions: Sequence[str] | None = None,
    *,
    dataset: str | None = None,
    data_dir: str | os.PathLike | None = None,
) -> DatasetConfigs:
    """Read `path/parent.yaml` and the YAMLs of the chosen sessions (`sessions`, then the first `max_datasets`).

    Without `path`, the simulated dataset `dataset` (e.g. `t1_small`) computed from the tier definitions,
    its `path` then the folder the simulator writes it to under `data_dir`.
    """
    source = _source(path, dataset, data_dir)
    folder = source.folder
    parent_raw = source.read(PARENT_FILE)
    if parent_raw is None:
        raise _missing_parent(folder)
    parent = _parse_yaml(folder / PARENT_FILE, parent_raw)
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
    chosen = []
    for name in names:
        raw = source.read(f"{name}.yaml")
        content = _parse_yaml(folder / f"{name}.yaml", raw)
        digest.update(raw)
        if content.get("session", name) != name or "unit_ids" not in content:
            raise DatasetConfigError(
                f"{folder / (name + '.yaml')} must have `session: {name}` and a `unit_ids` list."
            )
        chosen.append(
            SessionConfig(
                name=name,
                path=str(content.get("path", name)),
                unit_ids=tuple(int(unit) for unit in content["unit_ids"]),
                subject=content.get("subject"),
            )
        )
    return DatasetConfigs(
        path=folder, parent=parent, sessions=chosen, hash=digest.hexdigest()[:16], dataset=source.dataset
    )


def dataset_config_files(parent: dict[str, Any], sessions: list[SessionConfig]) -> dict[str, bytes]:
    """{file name: YAML bytes} of a dataset-config folder: `parent.yaml` (with the session order) and one
    YAML per session."""
    parent = {**parent, "sessions": [session.name for session in sessions]}
    files = {PARENT_FILE: yaml.safe_dump(parent, sort_keys=False).encode()}
    for session in sessions:
        content = {"session": session.name, "subject": session.subject, "path": session.path}
        content["unit_ids"] = list(session.unit_ids)
        files[f"{session.name}.yaml"] = yaml.safe_dump(content, sort_keys=False, width=100).encode()
    return files


def write_dataset_configs(
    folder: str | os.PathLike, parent: dict[str, Any], sessions: list[SessionConfig]
) -> Path:
    """Write `parent.yaml` (with the session order) and one YAML per session into `folder`; each file
    atomically (a reader never sees half a file)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in dataset_config_files(parent, sessions).items():
        temporary = folder / f".{name}.{os.getpid()}.tmp"
        temporary.write_bytes(raw)
        temporary.replace(folder / name)
    return folder
