"""Features of image batches kept on disk, so the sets every FID/KID test measures again are extracted once.

A decoder's test measures five sets (the reference, real-vs-real, the untrained model's samples, noise and
the model's own); four of them are the same for every checkpoint of a config, and the Inception forward pass
is most of a CPU test's time. `CachedFeatures` wraps an extractor: each uint8 batch's features are stored
under a SHA-256 of the extractor's identity (its name and weights hash) and the batch's own bytes, dtype and
shape, so a hit needs the same extractor and the same pixels, whatever produced them, and nothing can go
stale. Files are float32 `.npy` (N × D × 4 bytes: 8 MB for 1,024 Inception features), read with
`allow_pickle=False` and written atomically; a file that does not read back as the expected array is
extracted again and replaced. Deleting the folder only costs time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from models.common.feature_extractors import ImageFeatures

log = logging.getLogger(__name__)


class CachedFeatures(ImageFeatures):
    """`extractor` with its features of each batch kept in `folder` (see the module doc). Its name,
    feature count and identity are the extractor's: cached and fresh numbers are the same measurement."""

    def __init__(self, extractor: ImageFeatures, folder: str | Path) -> None:
        super().__init__()
        self.extractor = extractor
        self.folder = Path(folder)
        self.name = extractor.name
        self.num_features = extractor.num_features
        self._identity = extractor.identity  # hashing the weights is a pass over them: once

    @property
    def identity(self) -> str:
        return self._identity

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        path = self._path(images)
        cached = self._load(path, len(images))
        if cached is not None:
            return torch.from_numpy(cached).to(images.device)
        features = self.extractor(images)
        self._store(path, features)
        return features

    def _path(self, images: torch.Tensor) -> Path:
        pixels = images.detach().cpu().contiguous()
        digest = hashlib.sha256(f"{self._identity}|{pixels.dtype}|{tuple(pixels.shape)}|".encode())
        digest.update(pixels.reshape(-1).view(torch.uint8).numpy().tobytes())
        key = digest.hexdigest()
        return self.folder / key[:2] / f"{key}.npy"

    def _load(self, path: Path, count: int) -> np.ndarray | None:
        if not path.is_file():
            return None
        try:
            features = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            log.warning("FID feature cache: %s does not read (%s); extracting again.", path, error)
            return None
        if features.dtype != np.float32 or features.shape != (count, self.num_features):
            log.warning(
                "FID feature cache: %s holds %s %s, not float32 (%d, %d); extracting again.",
                path,
                features.dtype,
                features.shape,
                count,
                self.num_features,
            )
            return None
        return features

    def _store(self, path: Path, features: torch.Tensor) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                np.save(file, features.detach().float().cpu().numpy(), allow_pickle=False)
            os.replace(temporary, path)  # whole or absent, also with several ranks writing the same key
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
