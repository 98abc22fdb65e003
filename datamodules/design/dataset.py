"""DesignDataset: one split of rendered designs by index, from shards, from memory or rendered on the fly.

All three storages return the same bytes for the same (resolution, seed, split, index): shards and
memory hold exactly what `render_design` returns.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from datamodules.design.render import LABEL_SPECS, decode_structure, render_design
from datamodules.design.store import DesignDataConfig, ShardReader
from training.toolkit.errors import UserError

STORAGES = ("shards", "on_the_fly", "memory")


class DesignDataset(Dataset):
    """Sample `i` of `split`: a dict of torch tensors (see models/design/schema.py).

    `image` uint8 (3, H, W), `f_tensor` float32 (4, H, W), `goal` and `format` int64 scalars, `tone`
    float32 (2,), `grammar` float32 (4,), `index` int64 scalar (its index in the split).
    `storage="shards"` reads `config.folder(data_dir)` (generate it first: store.generate);
    `"memory"` renders the split once into RAM; `"on_the_fly"` renders each item when asked.
    """

    def __init__(
        self,
        config: DesignDataConfig,
        split: str,
        storage: str = "on_the_fly",
        data_dir: str | os.PathLike | None = None,
    ) -> None:
        if storage not in STORAGES:
            raise UserError(f"data.storage={storage!r}; choose one of {', '.join(STORAGES)}.")
        self.config, self.split, self.storage = config, split, storage
        self.length = config.count(split)
        self._reader: ShardReader | None = None
        self._memory: dict[str, np.ndarray] | None = None
        if storage == "shards":
            if data_dir is None:
                raise UserError("DesignDataset(storage='shards') needs data_dir (data.data_dir).")
            self._reader = ShardReader(config.folder(data_dir), split)
            if len(self._reader) != self.length:
                raise UserError(
                    f"{self._reader.folder} holds {len(self._reader)} {split} designs, not {self.length}."
                )
        elif storage == "memory" and self.length:  # an empty split (e.g. num_val=0) holds nothing
            samples = [self._render(i) for i in range(self.length)]
            self._memory = {
                key: np.stack([s[key] for s in samples]) for key in ("image", "structure", *LABEL_SPECS)
            }

    def __len__(self) -> int:
        return self.length

    def _render(self, index: int) -> dict[str, np.ndarray]:
        return render_design(index, self.config.resolution, self.config.seed, self.split).arrays()

    def arrays(self, index: int) -> dict[str, np.ndarray]:
        """The stored numpy arrays of sample `index`: image, structure (uint8) and labels."""
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for the {self.length} {self.split} designs")
        if self._reader is not None:
            return self._reader.sample(index)
        if self._memory is not None:
            return {key: values[index] for key, values in self._memory.items()}
        return self._render(index)

    def __getitem__(self, index: int) -> dict[str, Any]:
        arrays = self.arrays(int(index))
        return {
            "image": torch.from_numpy(np.ascontiguousarray(arrays["image"])),
            "f_tensor": torch.from_numpy(decode_structure(arrays["structure"])),
            **{name: torch.as_tensor(np.asarray(arrays[name])) for name in LABEL_SPECS},
            "index": torch.tensor(int(index), dtype=torch.int64),
        }
