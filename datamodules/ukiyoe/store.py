"""The procedural prints on disk, in torchvision ImageFolder layout, one folder per split:

    <data_dir>/ukiyoe/r<resolution>_seed<seed>_<config hash>/
        meta.json                      written last: its presence means the folder is complete
        <split>/<scene>/<index>.png    print `index` of the split (zero-padded: file order = index order)

A folder is written under a temporary name and renamed into place, so a crash never leaves a
half-written set where a complete one is expected, and concurrent writers cannot clash. It is
cached by (generator version, config hash): generating the same config again writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

from PIL import Image

from datamodules.ukiyoe.procedural import SCENES, SPLITS, render_print, scene_of
from training.errors import UserError

log = logging.getLogger(__name__)

GENERATOR_NAME = "visioncore.ukiyoe.procedural"
GENERATOR_VERSION = "1"  # bump whenever render_print's output changes: cached folders are then rebuilt
CHUNK = 256  # prints per worker job
META_FILE = "meta.json"


@dataclass(frozen=True)
class PrintSetConfig:
    """What determines the written bytes: resolution, seed and the number of prints per split."""

    resolution: int
    seed: int
    num_train: int
    num_val: int
    num_test: int

    def __post_init__(self) -> None:
        if self.resolution < 8:
            raise UserError(f"data.resolution={self.resolution}: use at least 8 pixels (32 or 64 on CPU).")
        for split in SPLITS:
            if self.count(split) < 0:
                raise UserError(f"data.num_{split}={self.count(split)} must be >= 0.")

    def count(self, split: str) -> int:
        return getattr(self, f"num_{split}")

    @property
    def config_hash(self) -> str:
        text = json.dumps(
            {"generator": GENERATOR_NAME, "version": GENERATOR_VERSION, **asdict(self)}, sort_keys=True
        )
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def folder(self, data_dir: str | os.PathLike) -> Path:
        return Path(data_dir) / "ukiyoe" / f"r{self.resolution}_seed{self.seed}_{self.config_hash}"


def print_path(split: str, index: int) -> str:
    """Where print `index` of `split` lies inside a generated folder."""
    return f"{split}/{SCENES[scene_of(index)]}/{index:06d}.png"


def is_complete(folder: Path, config: PrintSetConfig) -> bool:
    """True when `folder` holds this config written by this generator version."""
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    generator = meta.get("generator", {})
    return (
        generator.get("version") == GENERATOR_VERSION and generator.get("config_hash") == config.config_hash
    )


def generate(config: PrintSetConfig, data_dir: str | os.PathLike, workers: int = 1) -> Path:
    """Write every split of `config` under `data_dir` (kept as it is if already complete); returns the folder."""
    folder = config.folder(data_dir)
    if is_complete(folder, config):
        log.info("kept    %s (cached: same generator version and config)", folder)
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    started = time.perf_counter()
    try:
        for split in SPLITS:
            for scene in SCENES:
                (temporary / split / scene).mkdir(parents=True)
        _render_all(config, temporary, workers)
        meta = {
            "generator": {
                "name": GENERATOR_NAME,
                "version": GENERATOR_VERSION,
                "config_hash": config.config_hash,
            },
            "config": asdict(config),
            "classes": list(SCENES),
            "splits": {split: config.count(split) for split in SPLITS},
        }
        (temporary / META_FILE).write_text(json.dumps(meta, indent=1))
        _publish(temporary, folder, config)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    total = sum(config.count(split) for split in SPLITS)
    seconds = time.perf_counter() - started
    log.info("wrote   %s (%d prints in %.1f s, %.0f/s)", folder, total, seconds, total / max(seconds, 1e-9))
    return folder


def _publish(temporary: Path, folder: Path, config: PrintSetConfig) -> None:
    """Rename the finished folder into place; another process that got there first wins."""
    if folder.exists() and not is_complete(folder, config):
        shutil.rmtree(folder)  # an outdated or interrupted folder under this name
    try:
        temporary.rename(folder)
    except OSError:
        if not is_complete(folder, config):
            raise


def _render_all(config: PrintSetConfig, root: Path, workers: int) -> None:
    """Write every print (chunks in `workers` spawned processes; the bytes do not depend on `workers`)."""
    jobs = [
        (str(root), split, start, min(start + CHUNK, config.count(split)), config.resolution, config.seed)
        for split in SPLITS
        for start in range(0, config.count(split), CHUNK)
    ]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=get_context("spawn")) as pool:
            list(pool.map(_render_chunk, jobs))
    else:
        for job in jobs:
            _render_chunk(job)


def _render_chunk(job: tuple[str, str, int, int, int, int]) -> None:
    """Write prints [start, stop) of a split (a picklable job)."""
    root, split, start, stop, resolution, seed = job
    for index in range(start, stop):
        image, _ = render_print(index, resolution, seed, split)
        Image.fromarray(image).save(Path(root) / print_path(split, index), compress_level=1)


def read_meta(folder: Path) -> dict:
    """meta.json of a generated folder, or a UserError saying how to create it."""
    path = folder / META_FILE
    if not path.is_file():
        raise UserError(
            f"{path} does not exist: {folder} is not a generated ukiyoe print set (or its generation was "
            "interrupted). Run `python -m datamodules.ukiyoe generate data_dir=DATA_DIR ...` or let the "
            "UkiyoeDataModule's prepare_data generate it (data.source=procedural)."
        )
    return json.loads(path.read_text())
