"""FID and KID of image sets against a real reference, measured beside the baselines that give them a scale.

An offline FID's scale depends on its feature extractor, so a number alone means nothing: each candidate
set is measured with the same extractor as a held-out real set (`real_vs_real`, the floor) and uniform
noise (`noise`, the ceiling), and `fid_relative/<name>` places it between the two (0 = as close as other
real images, 1 = as far as noise). Callers add an untrained model's samples as one more candidate.

The metrics are torchmetrics' `FrechetInceptionDistance` and `KernelInceptionDistance`. Each image batch
goes through the extractor once and its float64 features feed both metrics (their `feature=` module passes
precomputed features through); the reference's features are extracted once and kept across candidates
(`reset_real_features=False`). With `feature_cache` a folder, each batch's features are also kept on disk
under a hash of the extractor and the pixels (`models/common/feature_cache.py`), so the sets that do not
change between tests (the reference, real-vs-real, noise, an untrained model's samples) are extracted once
per folder, not once per test. Image sets are iterables of uint8 (B, 3, H, W) batches, read one batch at a
time, so a large set never sits in memory (KID keeps the (N, D) features, as it must). Each process
measures the whole sets it is given (no cross-process reduction), so under DDP every rank gets the same
numbers when every rank reads the same sets.

The numbers travel with the extractor's identity (`QualityTable.features`: its name and weights hash), which
is logged when they are measured and which the LightningModules report in the run's summary.json
(`fid_features`, beside `metrics`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from models.common.feature_cache import CachedFeatures
from models.common.feature_extractors import ImageFeatures
from training.toolkit.errors import UserError

log = logging.getLogger(__name__)
REAL_VS_REAL = "real_vs_real"
NOISE = "noise"
ANCHORS = (REAL_VS_REAL, NOISE)


class _PrecomputedFeatures(nn.Module):
    """The `feature=` module of both metrics: FeatureDistances extracts each batch's features once and hands
    them to FID and KID, so the metrics' own feature step is the identity. `num_features` spares FID its
    dummy forward pass."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


class FeatureDistances:
    """FID and KID (mean and std over random subsets) of candidate image sets against one reference set,
    whose features are extracted once, at construction.

    KID's subset size is the configured `subset_size` clamped to the smaller set of each pair (KID is an
    unbiased MMD² estimate at any subset size; a smaller one only widens its spread). `seed` fixes KID's
    subset draws. `config_key` names the config that sets the sample counts, for error messages.
    `feature_cache` (a folder, or None) keeps each batch's features on disk (see the module doc).
    """

    def __init__(
        self,
        extractor: ImageFeatures,
        reference: Iterable[torch.Tensor],
        *,
        subset_size: int = 1000,
        subsets: int = 100,
        seed: int = 0,
        device: torch.device | str | None = None,
        config_key: str = "quality",
        feature_cache: str | Path | None = None,
    ) -> None:
        self.device = torch.device(device) if device is not None else _device_of(extractor)
        if feature_cache is not None:
            extractor = CachedFeatures(extractor, feature_cache)
        self.extractor = extractor.eval().requires_grad_(False).to(self.device)
        self.subset_size = subset_size
        self.seed = seed
        self.config_key = config_key
        self.fid = FrechetInceptionDistance(
            feature=_PrecomputedFeatures(extractor.num_features),
            reset_real_features=False,
            sync_on_compute=False,
        ).to(self.device)
        with warnings.catch_warnings():  # "KID keeps every feature": by design, and they are small (N, D)
            warnings.filterwarnings(
                "ignore", message=".*will save all extracted features", category=UserWarning
            )
            self.kid = KernelInceptionDistance(
                feature=_PrecomputedFeatures(extractor.num_features),
                subsets=subsets,
                subset_size=subset_size,
                reset_real_features=False,
                sync_on_compute=False,
            ).to(self.device)
        self.reference_size = self._update(reference, real=True, name="reference")

    def __call__(self, name: str, images: Iterable[torch.Tensor]) -> dict[str, float]:
        """`{fid/<name>, kid/<name>, kid_std/<name>}` of the `images` set against the reference."""
        self.fid.reset()
        self.kid.reset()
        size = self._update(images, real=False, name=name)
        self.kid.subset_size = min(self.subset_size, self.reference_size, size)
        fid = self.fid.compute()
        with torch.random.fork_rng(devices=[]):  # KID draws its subsets from the global CPU generator
            torch.manual_seed(self.seed)
            kid_mean, kid_std = self.kid.compute()
        return {f"fid/{name}": float(fid), f"kid/{name}": float(kid_mean), f"kid_std/{name}": float(kid_std)}

    @torch.no_grad()
    def _update(self, images: Iterable[torch.Tensor], real: bool, name: str) -> int:
        size = 0
        for batch in images:
            if batch.dtype != torch.uint8 or batch.dim() != 4 or batch.shape[1] != 3:
                raise ValueError(
                    f"FID/KID set '{name}' must hold uint8 (B, 3, H, W) batches, got {batch.dtype} "
                    f"{tuple(batch.shape)}."
                )
            features = self.extractor(batch.to(self.device)).double()
            self.fid.update(features, real=real)
            self.kid.update(features, real=real)
            size += batch.shape[0]
        if size < 2:
            raise UserError(
                f"The '{name}' image set for FID/KID holds {size} image(s); both need at least 2 per set "
                f"(raise the number of samples or test images under `{self.config_key}`)."
            )
        return size


class QualityTable(dict):
    """`{metric name: value}` (a plain dict of floats, ready for `log_dict`) that also carries `features`,
    the identity of the extractor the values were measured with (`ImageFeatures.identity`)."""

    def __init__(self, values: Mapping[str, float] | None = None, *, features: str) -> None:
        super().__init__(values or {})
        self.features = features


class ReportsFidFeatures:
    """Mix into a LightningModule that measures FID/KID: `remember_fid_features(table)` keeps the extractor
    identity of the last quality table, and `summary_facts()` reports it in the run's summary.json."""

    fid_features: str | None = None

    def remember_fid_features(self, table: Mapping[str, float]) -> None:
        self.fid_features = getattr(table, "features", None) or self.fid_features

    def summary_facts(self) -> dict[str, str]:
        """For the run's summary.json: the feature extractor (name, weights hash) of its FID/KID metrics."""
        return {"fid_features": self.fid_features} if self.fid_features else {}


def quality_table(
    extractor: ImageFeatures,
    reference: Iterable[torch.Tensor],
    candidates: Mapping[str, Iterable[torch.Tensor]],
    **distance_options,
) -> QualityTable:
    """FID/KID of every candidate set against `reference` (see FeatureDistances for the options), plus
    `fid_relative/<name>` and `kid_relative/<name>` for each candidate that is not a baseline when both
    `real_vs_real` and `noise` are among the candidates: (d − d_real) / (d_noise − d_real). The table's
    `features` names the extractor (also logged)."""
    identity = extractor.identity
    log.info("FID/KID features: %s", identity)
    distances = FeatureDistances(extractor, reference, **distance_options)
    table = QualityTable(features=identity)
    for name, images in candidates.items():
        table.update(distances(name, images))
    if all(anchor in candidates for anchor in ANCHORS):
        for name in candidates:
            if name not in ANCHORS:
                for metric in ("fid", "kid"):
                    table[f"{metric}_relative/{name}"] = relative_distance(table, metric, name)
    return table


def relative_distance(table: Mapping[str, float], metric: str, name: str) -> float:
    """Where `name` sits between real images (0) and noise (1) on `metric` (`fid` or `kid`)."""
    floor, ceiling = table[f"{metric}/{REAL_VS_REAL}"], table[f"{metric}/{NOISE}"]
    return (table[f"{metric}/{name}"] - floor) / (ceiling - floor)


def noise_images(count: int, shape: Sequence[int], batch_size: int, seed: int = 0) -> Iterator[torch.Tensor]:
    """`count` uniform-noise uint8 images of `shape` (3, H, W), in batches: the real-vs-noise baseline."""
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, count, batch_size):
        size = min(batch_size, count - start)
        yield torch.randint(0, 256, (size, *shape), generator=generator, dtype=torch.uint8)


def _device_of(module: nn.Module) -> torch.device:
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")
