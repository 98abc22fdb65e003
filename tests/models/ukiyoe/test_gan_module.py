"""The ukiyoe GAN's training loop: D schedule, non-finite steps, annealed temperature, curriculum, sampling."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from callbacks.annealing import ScalarAnnealing
from callbacks.curriculum import CurriculumCallback
from callbacks.nonfinite_guard import NonFiniteGuard
from models.ukiyoe.augment import DiffAugment
from models.ukiyoe.balance import BalanceController
from models.ukiyoe.gan_module import UkiyoeGANModel
from models.ukiyoe.nets.critic import TransformerCritic
from models.ukiyoe.nets.discriminator import ResidualDiscriminator
from models.ukiyoe.nets.generator import UkiyoeGenerator
from models.ukiyoe.nets.nca import IntegratedNCA
from models.ukiyoe.nets.palette import GumbelPalette
from models.ukiyoe.nets.stylegan import StyleGenerator
from models.ukiyoe.quality import PRINTS, UkiyoeQuality
from models.ukiyoe.sample_stats import mean_pairwise_distance, palette_exact_share
from tests.helpers import quiet_trainer
from training.toolkit.errors import UserError

RESOLUTION = 16


def tiny_gan(**options: Any) -> UkiyoeGANModel:
    torch.manual_seed(0)
    generator = UkiyoeGenerator(
        style=StyleGenerator(
            z_dim=8, w_dim=8, mapping_layers=2, resolution=RESOLUTION, state_channels=8, channels=(16, 8, 8)
        ),
        nca=IntegratedNCA(state_channels=8, hidden=16, w_dim=8, num_colors=4, steps=2),
        palette=GumbelPalette(num_colors=4),
    )
    return UkiyoeGANModel(
        generator=generator,
        discriminator=ResidualDiscriminator(resolution=RESOLUTION, channels=(8, 16, 16), mbstd_group_size=2),
        critic=TransformerCritic(resolution=RESOLUTION, patch_size=4, dim=16, depth=1, heads=2),
        augment=DiffAugment(),
        g_optimizer=functools.partial(torch.optim.Adam, lr=1e-3, betas=(0.0, 0.99)),
        d_optimizer=functools.partial(torch.optim.Adam, lr=1e-3, betas=(0.0, 0.99)),
        **({"r1_interval": 2, "grid_size": 4, "sample_batch_size": 4} | options),
    )


def prints(count: int = 32, batch_size: int = 4) -> DataLoader:
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(count, 3, RESOLUTION, RESOLUTION, generator=generator) * 2 - 1
    return DataLoader(TensorDataset(images, torch.zeros(count, dtype=torch.long)), batch_size=batch_size)


def optimizer_steps(optimizer: torch.optim.Optimizer) -> int:
    """Adam's step count (the same for every parameter it has stepped)."""
    states = [s for s in optimizer.state.values() if "step" in s]
    return int(states[0]["step"]) if states else 0


@pytest.mark.parametrize(("interval", "steps"), [(1, 1), (3, 2)])
def test_the_discriminator_trains_exactly_on_the_configured_batches(tmp_path, monkeypatch, interval, steps):
    gan = tiny_gan(d_train_interval=interval, d_steps=steps)
    seen: list[int] = []
    original = UkiyoeGANModel.discriminator_step

    def spy(self, real, fake, optimizer):
        seen.append(self.trainer.fit_loop.epoch_loop.batch_idx)
        return original(self, real, fake, optimizer)

    monkeypatch.setattr(UkiyoeGANModel, "discriminator_step", spy)
    quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=7, limit_val_batches=0).fit(gan, prints())
    expected = [b for b in range(7) if b % interval == 0 for _ in range(steps)]
    assert seen == expected
    g_optimizer, d_optimizer = (o.optimizer for o in gan.optimizers())
    assert optimizer_steps(d_optimizer) == gan.d_updates == len(expected)
    assert optimizer_steps(g_optimizer) == 7


def test_a_non_finite_generator_step_is_skipped_counted_and_training_goes_on(tmp_path, monkeypatch):
    gan = tiny_gan()
    original = UkiyoeGANModel.generator_step

    def poisoned(self, fake, optimizer):
        if self.trainer.fit_loop.epoch_loop.batch_idx == 2:
            fake = fake * torch.tensor(float("nan"))  # every generator gradient becomes NaN
        return original(self, fake, optimizer)

    class Snapshot(pl.Callback):
        weights: dict[int, list[torch.Tensor]] = {}

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.weights[batch_idx] = [p.detach().clone() for p in module.generator.parameters()]

    monkeypatch.setattr(UkiyoeGANModel, "generator_step", poisoned)
    guard, snapshot = NonFiniteGuard(max_consecutive=3), Snapshot()
    quiet_trainer(
        tmp_path, max_epochs=1, limit_train_batches=4, limit_val_batches=0, callbacks=[guard, snapshot]
    ).fit(gan, prints())
    assert guard.skipped_total == 1
    before, skipped, after = snapshot.weights[1], snapshot.weights[2], snapshot.weights[3]
    assert all(torch.equal(a, b) for a, b in zip(before, skipped, strict=True))  # not applied
    assert all(torch.isfinite(p).all() for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(skipped, after, strict=True))  # training went on
    g_optimizer = gan.optimizers()[0].optimizer
    assert optimizer_steps(g_optimizer) == 3  # Adam's state did not count the skipped step


def test_the_gumbel_temperature_follows_the_seed_schedule_per_epoch(tmp_path):
    gan = tiny_gan()
    seen: list[float] = []

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if batch_idx == 0:
                seen.append(float(module.generator.palette.temperature))

    annealing = ScalarAnnealing(
        "generator.palette.temperature", start=2.0, end=0.5, kind="geometric", decay=0.5, unit="epoch"
    )
    quiet_trainer(
        tmp_path, max_epochs=4, limit_train_batches=1, limit_val_batches=0, callbacks=[annealing, Record()]
    ).fit(gan, prints())
    assert seen == pytest.approx([2.0, 1.0, 0.5, 0.5])


def test_the_curriculum_widens_the_nca_steps_of_both_generators(tmp_path):
    gan = tiny_gan()
    seen: list[tuple[int, int]] = []

    class Record(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            seen.append((module.generator.nca.steps, module.ema_generator.nca.steps))

    stages = [
        {"name": "k2", "start": 0, "params": {"nca_steps": 2}},
        {"name": "k5", "start": 1, "params": {"nca_steps": 5}},
    ]
    quiet_trainer(
        tmp_path,
        max_epochs=2,
        limit_train_batches=1,
        limit_val_batches=0,
        callbacks=[CurriculumCallback(stages), Record()],
    ).fit(gan, prints())
    assert seen == [(2, 2), (5, 5)]
    with pytest.raises(UserError, match="nca_steps"):
        gan.set_curriculum_stage("bad", {"steps": 3})


def test_the_ema_generator_follows_the_generator(tmp_path):
    gan = tiny_gan(ema_decay=0.5)
    initial = [p.detach().clone() for p in gan.ema_generator.parameters()]
    quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=3, limit_val_batches=0).fit(gan, prints())
    ema, live = list(gan.ema_generator.parameters()), list(gan.generator.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(initial, ema, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(ema, live, strict=True))  # an average, not a copy
    assert not any(p.requires_grad for p in ema)


def test_samples_are_palette_colours_and_reproducible_from_the_seed(tmp_path):
    gan = tiny_gan()
    first, again, other = (
        gan.sample_images(6, seed=3),
        gan.sample_images(6, seed=3),
        gan.sample_images(6, seed=4),
    )
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert float(palette_exact_share(first, gan.ema_generator.palette.colors())) == 1.0
    summary = gan.write_samples(tmp_path / "samples", num=6, seed=3, device="cpu")
    arrays = np.load(summary["arrays"])
    assert arrays["images"].shape == (6, 3, RESOLUTION, RESOLUTION) and arrays["images"].dtype == np.uint8
    assert np.array_equal(arrays["images"], ((first + 1) * 127.5).round().clamp(0, 255).byte().numpy())
    assert (tmp_path / "samples" / "grid.png").is_file() and summary["nca_steps"] == 2
    longer = gan.write_samples(tmp_path / "longer", num=5, seed=3, device="cpu", options={"nca_steps": 3})
    assert longer["nca_steps"] == 3 and gan.ema_generator.nca.steps == 2  # the override does not stick
    with pytest.raises(UserError, match="nca_steps"):
        gan.write_samples(tmp_path / "bad", num=2, seed=0, device="cpu", options={"steps": 3})


def test_diversity_is_zero_for_identical_images_and_grows_with_difference():
    same = torch.zeros(4, 3, 2, 2)
    assert float(mean_pairwise_distance(same)) == 0.0
    apart = torch.stack([torch.full((3, 2, 2), -1.0), torch.full((3, 2, 2), 1.0)])
    assert float(mean_pairwise_distance(apart)) == pytest.approx(2.0)


def test_the_balance_controller_moves_the_augmentation_probability_on_the_device():
    controller = BalanceController(
        mode="augment", low=0.6, high=0.85, augment_step=0.1, max_augment_probability=0.5
    )
    probability = torch.tensor(0.2)
    controller.adjust_probability(probability, torch.tensor(0.95))
    assert float(probability) == pytest.approx(0.3)  # D too accurate: augment more
    controller.adjust_probability(probability, torch.tensor(0.7))
    assert float(probability) == pytest.approx(0.3)  # inside the band: unchanged
    controller.adjust_probability(probability, torch.tensor(0.3))
    assert float(probability) == pytest.approx(0.2)  # D too weak: augment less
    for _ in range(10):
        controller.adjust_probability(probability, torch.tensor(1.0))
    assert float(probability) == pytest.approx(0.5)  # clamped


def test_the_balance_controller_follows_the_seeds_debugging_guide_per_epoch():
    controller = BalanceController(mode="interval", low=0.6, high=0.85, max_d_train_interval=3, max_d_steps=2)
    assert controller.adjust_schedule(0.97, interval=1, steps=1) == (
        2,
        1,
    )  # D too strong: train it less often
    assert controller.adjust_schedule(0.97, interval=3, steps=1) == (3, 1)  # capped
    assert controller.adjust_schedule(0.97, interval=1, steps=2) == (1, 1)  # fewer D steps first
    assert controller.adjust_schedule(0.40, interval=2, steps=1) == (1, 1)  # D too weak: more often
    assert controller.adjust_schedule(0.40, interval=1, steps=1) == (1, 2)  # then more D steps
    assert controller.adjust_schedule(0.40, interval=1, steps=2) == (1, 2)  # capped
    assert controller.adjust_schedule(0.70, interval=2, steps=2) == (2, 2)  # in the band: unchanged
    with pytest.raises(UserError, match="model.balance"):
        BalanceController(low=0.9, high=0.8)


def test_the_d_schedule_survives_a_checkpoint():
    gan = tiny_gan()
    gan.d_train_interval, gan.d_steps, gan.d_updates = 3, 2, 17
    checkpoint: dict[str, Any] = {}
    gan.on_save_checkpoint(checkpoint)
    restored = tiny_gan()
    restored.on_load_checkpoint(checkpoint)
    assert (restored.d_train_interval, restored.d_steps, restored.d_updates) == (3, 2, 17)


@pytest.mark.parametrize(
    ("key", "value"),
    [("d_train_interval", 0), ("d_steps", 0), ("augment_probability", 1.5), ("ema_decay", 1.0)],
)
def test_bad_settings_name_their_key(key, value):
    with pytest.raises(UserError, match=f"model.{key}"):
        tiny_gan(**{key: value})


def test_the_balance_controller_in_both_modes_adapts_augmentation_and_the_d_schedule():
    controller = BalanceController(mode="both", low=0.6, high=0.85, augment_step=0.1)
    probability = torch.tensor(0.2)
    controller.adjust_probability(probability, torch.tensor(0.95))
    assert float(probability) == pytest.approx(0.3)
    assert controller.adjust_schedule(0.97, interval=1, steps=1) == (2, 1)
    augment_only = BalanceController(mode="augment")
    assert augment_only.adjust_schedule(0.97, interval=1, steps=1) == (1, 1)
    interval_only, unchanged = BalanceController(mode="interval"), torch.tensor(0.2)
    interval_only.adjust_probability(unchanged, torch.tensor(0.99))
    assert float(unchanged) == pytest.approx(0.2)


class RecordedQuality:
    """A quality stub: FID values in turn, and whether each call asked for the baselines."""

    def __init__(self, fids: list[float]) -> None:
        self.fids, self.baselines = iter(fids), []

    def __call__(self, module: pl.LightningModule, baselines: bool = True) -> dict[str, float]:
        self.baselines.append(baselines)
        return {"fid/model": next(self.fids)}


def test_validation_ranks_snapshots_by_the_models_fid_and_the_test_adds_the_baselines(tmp_path):
    quality = RecordedQuality([3.0, 1.0, 2.0, 5.0])
    gan = tiny_gan(quality=quality, quality_every_n_epochs=1)
    best = pl.callbacks.ModelCheckpoint(
        dirpath=tmp_path, monitor="val/fid/model", mode="min", every_n_epochs=1
    )
    trainer = quiet_trainer(
        tmp_path,
        max_epochs=3,
        limit_train_batches=2,
        limit_val_batches=1,
        enable_checkpointing=True,
        callbacks=[best],
    )
    trainer.fit(gan, prints(), prints(count=4))
    assert quality.baselines == [False, False, False]  # one per epoch, the model's FID only
    assert best.best_model_score == 1.0 and "epoch=1" in best.best_model_path
    trainer.test(gan, prints(count=4))
    assert quality.baselines[-1] is True


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({}, r"model\.quality is null\."),
        (
            {"quality": RecordedQuality([]), "quality_every_n_epochs": 0},
            r"model\.quality_every_n_epochs is 0\.",
        ),
        (
            {"quality": UkiyoeQuality(feature=PRINTS), "quality_every_n_epochs": 5},  # no prints checkpoint
            r"model\.quality\.features_checkpoint is not set\.",
        ),
    ],
)
def test_ranking_by_an_fid_that_is_never_measured_stops_before_training(tmp_path, options, reason):
    gan = tiny_gan(**options)
    best = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, monitor="val/fid/model", mode="min")
    trainer = quiet_trainer(tmp_path, limit_train_batches=1, enable_checkpointing=True, callbacks=[best])
    with pytest.raises(UserError, match=rf"monitor=val/fid/model ranks .* {reason} .*monitor=null"):
        trainer.fit(gan, prints())
    assert trainer.global_step == 0
