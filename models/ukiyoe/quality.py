"""Test-time sample quality of the ukiyoe GAN: FID/KID of its samples beside the baselines that give them a scale.

`model.quality` builds a `UkiyoeQuality`; the GAN module calls it with itself at the end of testing and logs
what it returns under `test/`. Every image set has the same size N = min(num_samples, train images, test
images), so FID's small-sample bias is the same for all of them:
- reference: N training prints;
- `real_vs_real`: N test prints (the floor: how far apart two real samples are);
- `model`: the EMA generator's samples;
- `untrained`: samples of a freshly built generator (the run's seed gives the run's initial weights), from the
  same latents;
- `noise`: uniform noise images (the ceiling).
`fid_relative/model` places the model between real (0) and noise (1); the spec's target compares `model` with
`untrained` (a fall of at least half) and with the two anchors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytorch_lightning as pl

from models.common.classifier_features import ClassifierFeatures
from models.common.feature_extractors import (
    AUTO,
    INCEPTION_INSTALL,
    resolve_feature,
    select_feature_extractor,
)
from models.common.generative_quality import NOISE, REAL_VS_REAL, QualityTable, noise_images, quality_table
from training.toolkit.errors import UserError

log = logging.getLogger(__name__)
PRINTS = "prints"
MODEL, UNTRAINED = "model", "untrained"


class UkiyoeQuality:
    """FID/KID of a trained ukiyoe GAN's EMA samples against real prints, with the standard Inception features
    or the scene classifier of `experiment=ukiyoe_features` (`feature: prints`, from `features_checkpoint`);
    `feature: auto` takes Inception when its weights are installed, else the prints classifier.

    Cheap to build: the extractor's checkpoint is read only when it is called. `seed` fixes the latents of
    both generators, KID's subsets and the noise baseline; `batch_size` is the batch of real and noise images;
    `feature_cache` (a folder) keeps the extracted features of every image batch (the real and noise sets are
    extracted once).
    """

    def __init__(
        self,
        features_checkpoint: str | None = None,
        feature: str = AUTO,
        inception_weights: str | None = None,
        num_samples: int = 256,
        subset_size: int = 100,
        subsets: int = 50,
        seed: int = 0,
        batch_size: int = 64,
        feature_cache: str | None = None,
        config_key: str = "model.quality",
    ) -> None:
        self.features_checkpoint = features_checkpoint
        self.feature = feature
        self.inception_weights = inception_weights
        self.num_samples = num_samples
        self.subset_size = subset_size
        self.subsets = subsets
        self.seed = seed
        self.batch_size = batch_size
        self.feature_cache = feature_cache
        self.config_key = config_key

    def __call__(self, module: pl.LightningModule, baselines: bool = True) -> dict[str, float]:
        """The table for `module` under test (its trainer's datamodule gives the real prints); without
        `baselines` only the model's own FID/KID (what validation needs to rank snapshots, at a third of the
        cost). Nothing, and a warning saying how to get it, while the prints feature extractor is chosen and
        its checkpoint not set."""
        feature = self.resolved_feature()
        unmeasurable = self.why_unmeasurable(feature)
        if unmeasurable:
            log.warning("Sample quality (FID/KID) not measured: %s", unmeasurable)
            return {}
        return self.evaluate(module, module.trainer.datamodule, feature=feature, baselines=baselines)

    def resolved_feature(self) -> str:
        """The feature extractor `feature` names here (`auto`: inception when installed, else prints)."""
        return resolve_feature(
            self.feature,
            inception_weights=self.inception_weights,
            fallback=PRINTS,
            config_key=self.config_key,
        )

    def why_unmeasurable(self, feature: str | None = None) -> str | None:
        """Why nothing can be measured, and how to fix it (the prints extractor chosen and its checkpoint
        unset); None when FID/KID can be measured."""
        if (feature or self.resolved_feature()) != PRINTS or self.features_checkpoint:
            return None
        key = self.config_key
        return (
            f"{key}.features_checkpoint is not set. Train the offline feature extractor with "
            "`python -m training.run experiment=ukiyoe_features` and give its checkpoint "
            f"(<run>/checkpoints/*.ckpt); or measure with the standard Inception features ({key}.feature=auto "
            f"or inception: {INCEPTION_INSTALL}); or set {key}=null to silence this."
        )

    def evaluate(
        self,
        module: pl.LightningModule,
        datamodule: pl.LightningDataModule,
        feature: str | None = None,
        baselines: bool = True,
    ) -> QualityTable:
        """`{fid|kid|kid_std/<set>, fid_relative/<model|untrained>, kid_relative/<model|untrained>}`, naming
        its extractor (only `<set>` = model without `baselines`); `feature` is `self.feature` already
        resolved (None: resolve it here)."""
        extractor = select_feature_extractor(
            feature or self.feature,
            inception_weights=self.inception_weights,
            trained={PRINTS: self._prints_features},
            config_key=self.config_key,
        )
        count = min(self.num_samples, _split_size(datamodule, "train"), _split_size(datamodule, "test"))
        candidates = {MODEL: module.sample_uint8(count, self.seed)}
        if baselines:
            untrained = module.build_generator().to(module.device).eval()
            shape = (3, datamodule.resolution, datamodule.resolution)
            candidates |= {
                REAL_VS_REAL: datamodule.uint8_batches("test", count, self.batch_size),
                UNTRAINED: module.sample_uint8(count, self.seed, generator=untrained),
                NOISE: noise_images(count, shape, batch_size=self.batch_size, seed=self.seed),
            }
        return quality_table(
            extractor,
            datamodule.uint8_batches("train", count, self.batch_size),
            candidates,
            subset_size=self.subset_size,
            subsets=self.subsets,
            seed=self.seed,
            device=module.device,
            config_key=self.config_key,
            feature_cache=self.feature_cache,
        )

    def _prints_features(self) -> ClassifierFeatures:
        return ClassifierFeatures.from_checkpoint(
            self.features_checkpoint, f"{self.config_key}.features_checkpoint"
        )


def _split_size(datamodule: pl.LightningDataModule, split: str) -> int:
    """Images in the datamodule's `split` (its `datasets`, indexed by setup)."""
    if split not in datamodule.datasets:
        datamodule.setup("fit")  # under `task=test` only the test split may be open; the reference is train
    return len(datamodule.datasets[split])


def check_fid_monitor(monitor: str | None, quality: Callable | None, every_n_epochs: int) -> None:
    """A UserError before training when checkpoints are ranked (`monitor`) by a validation FID/KID that will
    never be measured (a crash at the first ranked epoch otherwise)."""
    monitor = monitor or ""
    if not monitor.startswith(("val/fid/", "val/kid/")):
        return
    if quality is None or not every_n_epochs:
        reason = "model.quality is null." if quality is None else "model.quality_every_n_epochs is 0."
    else:
        reason = quality.why_unmeasurable() if isinstance(quality, UkiyoeQuality) else None
    if reason:
        raise UserError(
            f"monitor={monitor} ranks checkpoints by the FID/KID measured at validation, but it is never "
            f"measured: {reason} Measure it (model.quality_every_n_epochs=N with the Inception weights "
            "installed or a prints extractor), or set monitor=null to keep and test the newest state."
        )
