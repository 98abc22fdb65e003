"""Test-time sample quality of the design decoder: FID/KID beside their baselines, and conditioning fidelity.

`model.quality` builds a `DecoderQuality`; the `DecoderModel` calls it with itself at the end of testing
and logs what it returns under `test/`. Every image set has the same size N = min(num_samples, test images),
so FID's small-sample bias is the same for all of them:
- reference: N training images;
- `real_vs_real`: N test images (the floor: how far apart two real samples are);
- `model`: the decoder's samples for those test images' metadata (goal, format, tone);
- `untrained`: samples of the same decoder config before training (the run's seed), from the same noise;
- `noise`: uniform noise images (the ceiling).
`fid_relative/model` places the model between real (0) and noise (1). Conditioning fidelity is a trained
reader naming goal and format back from the model's samples, beside what it reads from the untrained model's
(chance) and from the real test images (what the reader itself gets right): `conditioning/…` the abstractor
(needs the encoder and abstractor checkpoints, which Inception FID/KID do not), `conditioning_classifier/…`
a classifier of the design pixels (`reader_checkpoint`, `experiment=design_reader`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from models.common.feature_extractors import (
    AUTO,
    INCEPTION,
    INCEPTION_INSTALL,
    inception_available,
    select_feature_extractor,
)
from models.common.generative_quality import (
    NOISE,
    REAL_VS_REAL,
    QualityTable,
    noise_images,
    quality_table,
)
from models.design.decoder.conditioning_fidelity import ClassifierReading, ConditioningFidelity
from models.design.features import DesignFeatures
from models.design.stages import PIPELINE
from training.toolkit.sample_files import to_uint8_image
from training.toolkit.stage_checkpoint import untrained_model

log = logging.getLogger(__name__)
Batch = Mapping[str, torch.Tensor]
MODEL, UNTRAINED, REAL = "model", "untrained", "real"
# each reader's table prefix
ABSTRACTOR_READING = "conditioning"
CLASSIFIER_READING = "conditioning_classifier"
Reader = DesignFeatures | ClassifierReading


class DecoderQuality:
    """FID/KID (Inception or design features; `feature: auto` takes Inception when its weights are installed)
    and conditioning fidelity of a trained decoder's samples.

    Cheap to build: the encoder, abstractor and reader checkpoints are read only when it is called.
    `steps` / `guidance_scale` default to the decoder's own sampling settings; `seed` fixes the samples'
    noise, KID's subsets and the noise baseline; `feature_cache` (a folder) keeps the extracted features of
    every image batch, so the sets shared by every test of a config are extracted once.
    """

    def __init__(
        self,
        encoder_checkpoint: str | None = None,
        abstractor_checkpoint: str | None = None,
        reader_checkpoint: str | None = None,
        feature: str = AUTO,
        inception_weights: str | None = None,
        num_samples: int = 256,
        steps: int | None = None,
        guidance_scale: float | None = None,
        subset_size: int = 100,
        subsets: int = 50,
        seed: int = 0,
        feature_cache: str | None = None,
        config_key: str = "model.quality",
    ) -> None:
        self.encoder_checkpoint = encoder_checkpoint
        self.abstractor_checkpoint = abstractor_checkpoint
        self.reader_checkpoint = reader_checkpoint
        self.feature = feature
        self.inception_weights = inception_weights
        self.num_samples = num_samples
        self.steps = steps
        self.guidance_scale = guidance_scale
        self.subset_size = subset_size
        self.subsets = subsets
        self.seed = seed
        self.feature_cache = feature_cache
        self.config_key = config_key

    def __call__(self, module: pl.LightningModule) -> dict[str, float]:
        """The table for `module` under test: its trainer's datamodule, its run config for the untrained twin.
        Without the encoder/abstractor checkpoints, Inception FID/KID only (no conditioning fidelity), or
        nothing when the extractor is the design features; a warning says how to get the rest."""
        missing = [
            f"{self.config_key}.{name}"
            for name in ("encoder_checkpoint", "abstractor_checkpoint")
            if not getattr(self, name)
        ]
        if missing and not self._uses_inception():
            log.warning(
                "Sample quality not measured: %s not set. The design features are the trained encoder and "
                "abstractor; give their checkpoints (%s does), install the Inception weights (%s), or set "
                "%s=null to silence this.",
                " and ".join(missing),
                PIPELINE,
                INCEPTION_INSTALL,
                self.config_key,
            )
            return {}
        if missing:
            log.warning(
                "The abstractor's conditioning fidelity not measured: %s not set (the trained abstractor reads "
                "goal and format back from the samples; %s gives its checkpoints). Inception FID/KID are measured.",
                " and ".join(missing),
                PIPELINE,
            )
        untrained = untrained_model(module.trainer, self.config_key, quality=None).to(module.device)
        return self.evaluate(module, module.trainer.datamodule, untrained)

    def _uses_inception(self) -> bool:
        return self.feature == INCEPTION or (
            self.feature == AUTO and inception_available(self.inception_weights)
        )

    def evaluate(
        self, module: pl.LightningModule, datamodule: pl.LightningDataModule, untrained: pl.LightningModule
    ) -> QualityTable:
        """`{fid|kid|kid_std/<set>, fid_relative/model, fid_relative/untrained, ...,
        <conditioning|conditioning_classifier>/<goal|format>/<model|untrained|real>}` (see the module doc),
        naming its extractor."""
        readers: dict[str, Reader] = {}
        if self.encoder_checkpoint and self.abstractor_checkpoint:
            readers[ABSTRACTOR_READING] = DesignFeatures.from_checkpoints(
                self.encoder_checkpoint, self.abstractor_checkpoint, self.config_key
            ).to(module.device)
        if self.reader_checkpoint:
            readers[CLASSIFIER_READING] = ClassifierReading.from_checkpoint(
                self.reader_checkpoint, f"{self.config_key}.reader_checkpoint"
            ).to(module.device)
        design_features = readers.get(ABSTRACTOR_READING)
        extractor = select_feature_extractor(
            self.feature,
            inception_weights=self.inception_weights,
            trained={"design": lambda: design_features} if design_features is not None else {},
            config_key=self.config_key,
        )
        datamodule.setup("fit")  # `task=test` opens only the test split; the reference is training images
        train, test = _in_order(datamodule.train_dataloader()), _in_order(datamodule.test_dataloader())
        count = min(self.num_samples, len(test.dataset))
        fidelity = {
            name: {
                prefix: ConditioningFidelity(reader.fields).to(module.device)
                for prefix, reader in readers.items()
            }
            for name in (MODEL, UNTRAINED, REAL)
        }
        shape = (module.hparams.image_channels, module.hparams.resolution, module.hparams.resolution)
        candidates = {
            REAL_VS_REAL: _read_back(
                readers, fidelity[REAL], ((batch["image"], batch) for batch in _first(test, count))
            ),
            MODEL: _read_back(readers, fidelity[MODEL], self._samples(module, _first(test, count))),
            UNTRAINED: _read_back(
                readers, fidelity[UNTRAINED], self._samples(untrained, _first(test, count))
            ),
            NOISE: noise_images(count, shape, batch_size=test.batch_size, seed=self.seed),
        }
        table = quality_table(
            extractor,
            (batch["image"] for batch in _first(train, count)),
            candidates,
            subset_size=self.subset_size,
            subsets=self.subsets,
            seed=self.seed,
            device=module.device,
            config_key=self.config_key,
            feature_cache=self.feature_cache,
        )
        for name, metrics in fidelity.items():
            for prefix, metric in metrics.items():
                table.update(
                    {f"{prefix}/{field}/{name}": float(value) for field, value in metric.compute().items()}
                )
        return table

    def _samples(
        self, decoder: pl.LightningModule, batches: Iterable[Batch]
    ) -> Iterator[tuple[torch.Tensor, Batch]]:
        """uint8 samples for each batch's metadata, with the batch; the noise comes from one seeded CPU
        generator, so the trained and the untrained decoder start from the same noise."""
        generator = torch.Generator().manual_seed(self.seed)
        for batch in batches:
            images = decoder.sample(
                batch["goal"],
                batch["format"],
                batch["tone"],
                num_inference_steps=self.steps,
                guidance_scale=self.guidance_scale,
                generator=generator,
            )
            yield to_uint8_image(images), batch


def _read_back(
    readers: Mapping[str, Reader],
    fidelity: Mapping[str, ConditioningFidelity],
    pairs: Iterable[tuple[torch.Tensor, Batch]],
) -> Iterator[torch.Tensor]:
    """Yields the images of (images, requested metadata) pairs, updating each reader's `fidelity` (by its
    table prefix) with its reading of each batch on the way, so FID/KID and fidelity share one pass over the
    samples."""
    for images, requested in pairs:
        for prefix, reader in readers.items():
            metric = fidelity[prefix]
            with torch.no_grad():
                reading = reader.read(images.to(metric.device))
            metric.update(reading, {field: requested[field].to(metric.device) for field in metric.fields})
        yield images


def _in_order(loader: DataLoader) -> DataLoader:
    """A plain loader over the same dataset in index order: every process reads the same whole sets (the
    datamodule's loaders may shuffle and shard by rank) and the training loader's resumable state is untouched."""
    return DataLoader(loader.dataset, batch_size=loader.batch_size, num_workers=loader.num_workers)


def _first(loader: Iterable[Batch], count: int) -> Iterator[Batch]:
    """The loader's batches up to `count` samples in all (the last one cut)."""
    remaining = count
    for batch in loader:
        if remaining <= 0:
            return
        size = min(remaining, len(batch["image"]))
        yield {key: value[:size] for key, value in batch.items()}
        remaining -= size
