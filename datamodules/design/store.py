"""Rendered designs on disk: per split, shards of memory-mapped uint8 arrays plus label arrays, and meta.json.

    <data_dir>/design/r<resolution>_seed<seed>_<config hash>/
        meta.json                               written last: its presence means the folder is complete
        <split>/images_<k>.npy                  uint8 (n, 3, R, R)     shard k holds samples k*SHARD_SIZE...
        <split>/structure_<k>.npy               uint8 (n, 4, R, R)     render.decode_structure -> F_Tensor
        <split>/{goal,format,tone,grammar}.npy  labels of the whole split

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

import numpy as np

from datamodules.design.render import LABEL_SPECS, SPLIT_STREAMS, render_design
from datamodules.generated_set import META_FILE, GeneratedSetConfig, publish
from datamodules.generated_set import is_complete as is_complete  # re-exported: the store's own check
from training.toolkit.errors import UserError

log = logging.getLogger(__name__)

GENERATOR_NAME = "visioncore.design.renderer"
GENERATOR_VERSION = "2"  # bump whenever the renderer's output changes: cached folders are then rebuilt
SHARD_SIZE = 1024
CHUNK = 128  # samples per worker job (divides SHARD_SIZE, so a job stays inside one shard)


class DesignDataConfig(GeneratedSetConfig):
    """What determines the rendered bytes: resolution, seed and the number of samples per split."""

    system = "design"
    cpu_resolutions = "64 or 128"

    @property
    def generator(self) -> tuple[str, str]:
        return GENERATOR_NAME, GENERATOR_VERSION


def generate(config: DesignDataConfig, data_dir: str | os.PathLike, workers: int = 1) -> Path:
    """Render every split of `config` into its shard folder under `data_dir` (kept if already complete)."""

    def write(root: Path) -> dict[str, Any]:
        splits = {split: _allocate_split(config, root, split) for split in SPLIT_STREAMS}
        _render_all(config, root, workers)
        return {"shard_size": SHARD_SIZE, "splits": splits}

    return publish(config, data_dir, write, log, "designs")


def _allocate_split(config: DesignDataConfig, root: Path, split: str) -> dict[str, Any]:
    """Create the split's folder and its empty shard files; returns its entry of meta.json."""
    count, resolution = config.count(split), config.resolution
    (root / split).mkdir(parents=True)
    shards = []
    for k, start in enumerate(range(0, count, SHARD_SIZE)):
        rows = min(SHARD_SIZE, count - start)
        names = {"images": f"{split}/images_{k:04d}.npy", "structure": f"{split}/structure_{k:04d}.npy"}
        for key, channels in (("images", 3), ("structure", 4)):
            np.lib.format.open_memmap(
                root / names[key], "w+", np.uint8, (rows, channels, resolution, resolution)
            )
        shards.append({**names, "count": rows})
    return {"count": count, "shards": shards}


def _render_all(config: DesignDataConfig, root: Path, workers: int) -> None:
    """Render every split into its shards (chunks in `workers` spawned processes) and save the labels."""
    jobs = [
        (str(root), split, start, min(start + CHUNK, config.count(split)), config.resolution, config.seed)
        for split in SPLIT_STREAMS
        for start in range(0, config.count(split), CHUNK)
    ]
    parallel = workers > 1 and len(jobs) > 1
    pool = ProcessPoolExecutor(min(workers, len(jobs)), mp_context=get_context("spawn")) if parallel else None
    try:
        chunks = list((pool.map if pool else map)(_render_chunk, jobs))
    finally:
        if pool is not None:
            pool.shutdown()
    for split in SPLIT_STREAMS:
        ours = [chunk for job, chunk in zip(jobs, chunks, strict=True) if job[1] == split]
        for name, (dtype, shape) in LABEL_SPECS.items():
            values = np.concatenate([c[name] for c in ours]) if ours else np.zeros((0, *shape), dtype)
            np.save(root / split / f"{name}.npy", values)


def _render_chunk(job: tuple[str, str, int, int, int, int]) -> dict[str, np.ndarray]:
    """Render samples [start, stop) of a split into their shard (a picklable job); returns their labels."""
    root, split, start, stop, resolution, seed = job
    shard, row = divmod(start, SHARD_SIZE)
    images = np.load(Path(root) / split / f"images_{shard:04d}.npy", mmap_mode="r+")
    structure = np.load(Path(root) / split / f"structure_{shard:04d}.npy", mmap_mode="r+")
    labels: dict[str, list[np.ndarray]] = {name: [] for name in LABEL_SPECS}
    for offset, index in enumerate(range(start, stop)):
        arrays = render_design(index, resolution, seed, split).arrays()
        images[row + offset] = arrays["image"]
        structure[row + offset] = arrays["structure"]
        for name in LABEL_SPECS:
            labels[name].append(arrays[name])
    images.flush()
    structure.flush()
    return {name: np.stack(values) for name, values in labels.items()}


class ShardReader:
    """Random access to one split of a generated folder; arrays are memory-mapped on first use.

    The open maps are not pickled, so a reader travels cheaply to DataLoader worker processes.
    """

    def __init__(self, folder: str | os.PathLike, split: str) -> None:
        self.folder = Path(folder)
        meta_path = self.folder / META_FILE
        if not meta_path.is_file():
            raise UserError(
                f"{meta_path} does not exist: {self.folder} is not a generated design dataset (or its "
                "generation was interrupted). Run `python -m datamodules.design generate out=DATA_DIR ...` "
                "or use the DesignDM (its prepare_data generates it), or set data.storage=on_the_fly."
            )
        self.meta = json.loads(meta_path.read_text())
        self.split = split
        self.shards = self.meta["splits"][split]["shards"]
        self.count = int(self.meta["splits"][split]["count"])
        self._open: dict[str, Any] | None = None

    def __len__(self) -> int:
        return self.count

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_open": None}

    def _arrays(self) -> dict[str, Any]:
        if self._open is None:
            self._open = {
                "images": [np.load(self.folder / s["images"], mmap_mode="r") for s in self.shards],
                "structure": [np.load(self.folder / s["structure"], mmap_mode="r") for s in self.shards],
                **{
                    name: np.load(self.folder / self.split / f"{name}.npy", mmap_mode="r")
                    for name in LABEL_SPECS
                },
            }
        return self._open

    def sample(self, index: int) -> dict[str, np.ndarray]:
        """uint8 image and structure, and the labels, of sample `index` (numpy copies)."""
        arrays = self._arrays()
        shard, row = divmod(index, SHARD_SIZE)
        return {
            "image": np.array(arrays["images"][shard][row]),
            "structure": np.array(arrays["structure"][shard][row]),
            **{name: np.array(arrays[name][index]) for name in LABEL_SPECS},
        }
