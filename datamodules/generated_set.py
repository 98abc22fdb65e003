"""A generated data set on disk, cached by (generator version, config hash) and published atomically.

    <data_dir>/<system>/r<resolution>_seed<seed>_<config hash>/
        meta.json    written last: its presence means the folder is complete
        ...          whatever the system's writer puts there

A folder is written under a temporary name and renamed into place, so a crash never leaves a
half-written set where a complete one is expected, and concurrent writers cannot clash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from training.toolkit.errors import UserError

META_FILE = "meta.json"
SPLITS = ("train", "val", "test")  # one num_<split> field each


@dataclass(frozen=True)
class GeneratedSetConfig:
    """What determines the written bytes: resolution, seed and the number of samples per split.

    A system subclasses it, naming its `system` folder and its `generator` (name, version).
    """

    resolution: int
    seed: int
    num_train: int
    num_val: int
    num_test: int

    system: ClassVar[str]
    cpu_resolutions: ClassVar[str]  # suggested when the resolution is too small

    def __post_init__(self) -> None:
        if self.resolution < 8:
            raise UserError(
                f"data.resolution={self.resolution}: use at least 8 pixels ({self.cpu_resolutions} on CPU)."
            )
        for split in SPLITS:
            if self.count(split) < 0:
                raise UserError(f"data.num_{split}={self.count(split)} must be >= 0.")

    @property
    def generator(self) -> tuple[str, str]:
        """(name, version) of the code that writes the bytes; a new version rebuilds cached folders."""
        raise NotImplementedError

    def count(self, split: str) -> int:
        return getattr(self, f"num_{split}")

    @property
    def config_hash(self) -> str:
        name, version = self.generator
        text = json.dumps({"generator": name, "version": version, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def folder(self, data_dir: str | os.PathLike) -> Path:
        return Path(data_dir) / self.system / f"r{self.resolution}_seed{self.seed}_{self.config_hash}"


def is_complete(folder: Path, config: GeneratedSetConfig) -> bool:
    """True when `folder` holds this config written by this generator version."""
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    written = meta.get("generator", {})
    _, version = config.generator
    return written.get("version") == version and written.get("config_hash") == config.config_hash


def publish(
    config: GeneratedSetConfig,
    data_dir: str | os.PathLike,
    write: Callable[[Path], dict[str, Any]],
    log: logging.Logger,
    what: str,
) -> Path:
    """The folder of `config` under `data_dir`: kept if already complete, else filled by `write(folder)`
    (which returns its entries of meta.json) and renamed into place. `log` reports the counted `what`."""
    folder = config.folder(data_dir)
    if is_complete(folder, config):
        log.info("kept    %s (cached: same generator version and config)", folder)
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    started = time.perf_counter()
    try:
        temporary.mkdir()
        entries = write(temporary)
        name, version = config.generator
        meta = {
            "generator": {"name": name, "version": version, "config_hash": config.config_hash},
            "config": asdict(config),
            **entries,
        }
        (temporary / META_FILE).write_text(json.dumps(meta, indent=1))
        _rename_into_place(temporary, folder, config)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    total = sum(config.count(split) for split in SPLITS)
    seconds = time.perf_counter() - started
    log.info("wrote   %s (%d %s in %.1f s, %.0f/s)", folder, total, what, seconds, total / max(seconds, 1e-9))
    return folder


def _rename_into_place(temporary: Path, folder: Path, config: GeneratedSetConfig) -> None:
    """Rename the finished folder into place; another process that got there first wins."""
    if folder.exists() and not is_complete(folder, config):
        shutil.rmtree(folder)  # an outdated or interrupted folder under this name
    try:
        temporary.rename(folder)
    except OSError:
        if not is_complete(folder, config):
            raise
