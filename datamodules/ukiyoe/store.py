"""The procedural prints on disk, in torchvision ImageFolder layout, one folder per split:

    <data_dir>/ukiyoe/r<resolution>_seed<seed>_<config hash>/
        meta.json                      written last: its presence means the folder is complete
        <split>/<scene>/<index>.png    print `index` of the split (zero-padded: file order = index order)

Cached by (generator version, config hash) and published atomically: see generated_set.py.
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from PIL import Image

from datamodules.generated_set import META_FILE, GeneratedSetConfig, publish
from datamodules.generated_set import is_complete as is_complete  # re-exported: the store's own check
from datamodules.ukiyoe.procedural import SCENES, SPLITS, render_print, scene_of
from training.toolkit.errors import UserError

log = logging.getLogger(__name__)

GENERATOR_NAME = "visioncore.ukiyoe.procedural"
GENERATOR_VERSION = "1"  # bump whenever render_print's output changes: cached folders are then rebuilt
CHUNK = 256  # prints per worker job


class PrintSetConfig(GeneratedSetConfig):
    """What determines the written bytes: resolution, seed and the number of prints per split."""

    system = "ukiyoe"
    cpu_resolutions = "32 or 64"

    @property
    def generator(self) -> tuple[str, str]:
        return GENERATOR_NAME, GENERATOR_VERSION


def print_path(split: str, index: int) -> str:
    """Where print `index` of `split` lies inside a generated folder."""
    return f"{split}/{SCENES[scene_of(index)]}/{index:06d}.png"


def generate(config: PrintSetConfig, data_dir: str | os.PathLike, workers: int = 1) -> Path:
    """Write every split of `config` under `data_dir` (kept as it is if already complete); returns the folder."""

    def write(root: Path) -> dict[str, Any]:
        for split in SPLITS:
            for scene in SCENES:
                (root / split / scene).mkdir(parents=True)
        _render_all(config, root, workers)
        return {"classes": list(SCENES), "splits": {split: config.count(split) for split in SPLITS}}

    return publish(config, data_dir, write, log, "prints")


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
            "UkiyoeDM's prepare_data generate it (data.source=procedural)."
        )
    return json.loads(path.read_text())
