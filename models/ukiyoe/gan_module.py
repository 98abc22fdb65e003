"""`UkiyoeGANModel`: trains the StyleGAN + NCA + palette generator against a residual discriminator and a
transformer critic, with Lightning's manual optimisation (seeds 000/001's loop, their fixes as rules).

Per training batch: one fake batch is generated (with its graph); on batches whose index is a multiple of
`d_train_interval`, the discriminator (and the critic, same optimizer) takes `d_steps` steps on it
(detached) against the real batch, both through the same differentiable augmentation, with a lazy R1
penalty every `r1_interval` D steps; then the generator takes one step on the non-saturating loss plus
`reward_weight` x the critic's -log reward, and the EMA generator follows. Every step is clipped
(`clip_grad_norm`) and goes through `optimizer.step()`, where the shared NonFiniteGuard callback drops
non-finite gradients (the step is not applied, the skip is counted, K in a row stop the run).
Metrics are logged as device tensors (Lightning averages them per epoch on the device); the only host
reads are the guard's flag per step and what the heartbeat callbacks print per interval/epoch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from models.common.generative_quality import ReportsFidFeatures
from models.ukiyoe.augment import DiffAugment
from models.ukiyoe.balance import BalanceController
from models.ukiyoe.nets.generator import UkiyoeGenerator
from models.ukiyoe.palette_usage import PaletteUsage
from models.ukiyoe.quality import check_fid_monitor
from models.ukiyoe.sample_grid import plot_sample_grid
from models.ukiyoe.sample_stats import mean_pairwise_distance, palette_exact_share
from training.toolkit.errors import UserError
from training.toolkit.figures import report_figure
from training.toolkit.sample_files import sampling_device, save_grid_png, to_uint8_image
from training.toolkit.stage_checkpoint import untrained_model

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SCHEDULE_KEY = "ukiyoe_schedule"


class UkiyoeGANModel(ReportsFidFeatures, pl.LightningModule):
    def __init__(
        self,
        generator: UkiyoeGenerator,
        discriminator: nn.Module,
        augment: DiffAugment,
        g_optimizer: OptimizerFactory,
        d_optimizer: OptimizerFactory,
        critic: nn.Module | None = None,
        d_train_interval: int = 1,
        d_steps: int = 1,
        r1_gamma: float = 0.05,
        r1_interval: int = 16,
        reward_weight: float = 0.1,
        augment_probability: float = 0.3,
        clip_grad_norm: float | None = 10.0,
        ema_decay: float = 0.999,
        balance: BalanceController | None = None,
        grid_size: int = 16,
        grid_seed: int = 0,
        sample_batch_size: int = 64,
        quality: Callable[..., Mapping[str, float]] | None = None,
        quality_every_n_epochs: int = 0,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.save_hyperparameters(
            logger=False,
            ignore=[
                "generator",
                "discriminator",
                "augment",
                "g_optimizer",
                "d_optimizer",
                "critic",
                "balance",
                "quality",
            ],
        )
        for key, value in (
            ("d_train_interval", d_train_interval),
            ("d_steps", d_steps),
            ("r1_interval", r1_interval),
        ):
            if value < 1:
                raise UserError(f"model.{key}={value}: it must be an integer >= 1.")
        if not 0.0 <= augment_probability <= 1.0:
            raise UserError(f"model.augment_probability={augment_probability}: it must be in [0, 1].")
        if not 0.0 < ema_decay < 1.0:
            raise UserError(f"model.ema_decay={ema_decay}: it must be in (0, 1), e.g. 0.999.")
        self.generator = generator
        # The EMA generator draws every sample, grid and FID set; the discriminator and critic are not averaged.
        self.generator_ema = AveragedModel(
            generator, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True
        ).requires_grad_(False)
        self.discriminator = discriminator
        self.critic = critic
        self.augment = augment
        self.g_optimizer_factory = g_optimizer
        self.d_optimizer_factory = d_optimizer
        self.balance = balance
        self.quality = quality
        self.register_buffer("augment_probability", torch.tensor(float(augment_probability)))
        # host-side integers (checkpointed in on_save_checkpoint): reading them never waits for the device
        self.d_train_interval = d_train_interval
        self.d_steps = d_steps
        self.d_updates = 0
        self.train_palette = PaletteUsage(generator.palette.num_colors)
        self.eval_palette = PaletteUsage(generator.palette.num_colors)

    # ------------------------------------------------------------------ setup
    def on_fit_start(self) -> None:
        check_fid_monitor(
            getattr(self.trainer.checkpoint_callback, "monitor", None),
            self.quality,
            self.hparams.quality_every_n_epochs,
        )

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        d_parameters = chain(self.discriminator.parameters(), self.critic.parameters() if self.critic else ())
        return [self.g_optimizer_factory(self.generator.parameters()), self.d_optimizer_factory(d_parameters)]

    def set_curriculum_stage(self, name: str, params: Mapping[str, Any]) -> None:
        """CurriculumCallback: `params.nca_steps` sets the NCA's K (training and EMA generator)."""
        unknown = set(params) - {"nca_steps"}
        if unknown or "nca_steps" not in params:
            raise UserError(
                f"callbacks.curriculum.stages: stage '{name}' has params {dict(params)}; the ukiyoe GAN's stages "
                "take exactly one param, nca_steps (the NCA's step count K), e.g. {name: k16, start: 10, "
                "params: {nca_steps: 16}}."
            )
        steps = int(params["nca_steps"])
        if steps < 1:
            raise UserError(f"callbacks.curriculum.stages: stage '{name}' has nca_steps={steps}; use >= 1.")
        self.generator.nca.steps = steps
        self.generator_ema.module.nca.steps = steps

    # --------------------------------------------------------------- training
    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        real = batch[0]
        g_optimizer, d_optimizer = self.optimizers()
        fake, weights = self.generator(self._noise(real.shape[0]))
        # counted from the batch index (seed 001's fix), so the schedule does not depend on how many
        # optimizer steps earlier batches took
        if batch_idx % self.d_train_interval == 0:
            for _ in range(self.d_steps):
                self.discriminator_step(real, fake.detach(), d_optimizer)
        self.generator_step(fake, g_optimizer)
        self.generator_ema.update_parameters(self.generator)
        self.train_palette.update(weights.detach())
        size = real.shape[0]
        self.log("train/augment_p", self.augment_probability, on_step=True, on_epoch=False, batch_size=size)

    def discriminator_step(self, real: torch.Tensor, fake: torch.Tensor, optimizer: Any) -> None:
        self.toggle_optimizer(optimizer)
        terms = self.discriminator_losses(real, fake, with_r1=self._r1_due())
        self._optimizer_step(optimizer, terms["loss"])
        self.untoggle_optimizer(optimizer)
        self.d_updates += 1
        if self.balance is not None:
            self.balance.adjust_probability(self.augment_probability, terms["accuracy"])
        for name, value in terms.items():
            key = {"loss": "d_loss", "accuracy": "d_acc"}.get(name, name)
            self.log(f"train/{key}", value.detach(), on_step=True, on_epoch=True, batch_size=real.shape[0])

    def generator_step(self, fake: torch.Tensor, optimizer: Any) -> None:
        self.toggle_optimizer(optimizer)
        terms = self.generator_losses(fake)
        self._optimizer_step(optimizer, terms["loss"])
        self.untoggle_optimizer(optimizer)
        for name, value in terms.items():
            key = {"loss": "g_loss"}.get(name, name)
            self.log(f"train/{key}", value.detach(), on_step=True, on_epoch=True, batch_size=fake.shape[0])

    def _r1_due(self) -> bool:
        return self.hparams.r1_gamma > 0 and self.d_updates % self.hparams.r1_interval == 0

    def discriminator_losses(
        self, real: torch.Tensor, fake: torch.Tensor, with_r1: bool
    ) -> dict[str, torch.Tensor]:
        """D's (and the critic's) loss on a real and a (detached) fake batch, both augmented alike:
        `{loss, accuracy[, r1][, critic_loss]}`. Plain torch: the loop benchmark calls it too."""
        real_in = self.augment(real, self.augment_probability).detach().requires_grad_(with_r1)
        fake_in = self.augment(fake, self.augment_probability)
        real_logits, fake_logits = self.discriminator(real_in), self.discriminator(fake_in)
        terms = {"loss": F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()}
        terms["accuracy"] = 0.5 * (
            (real_logits.detach() > 0).float().mean() + (fake_logits.detach() < 0).float().mean()
        )
        if with_r1:  # lazy R1 (StyleGAN2): every r1_interval steps, scaled up by the interval
            (gradient,) = torch.autograd.grad(real_logits.sum(), real_in, create_graph=True)
            terms["r1"] = gradient.square().sum(dim=(1, 2, 3)).mean()
            terms["loss"] = (
                terms["loss"] + 0.5 * self.hparams.r1_gamma * self.hparams.r1_interval * terms["r1"]
            )
        if self.critic is not None:
            critic = (
                F.softplus(self.critic(fake_in)).mean() + F.softplus(-self.critic(real_in.detach())).mean()
            )
            terms["critic_loss"] = critic
            terms["loss"] = terms["loss"] + critic
        return terms

    def generator_losses(self, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """G's non-saturating loss through the augmented discriminator, plus `reward_weight` x the critic's
        -log(reward): `{loss[, reward]}` (reward = the critic's mean probability that a sample is real)."""
        terms = {"loss": F.softplus(-self.discriminator(self.augment(fake, self.augment_probability))).mean()}
        if self.critic is not None:
            critic_logits = self.critic(fake)
            terms["loss"] = terms["loss"] + self.hparams.reward_weight * F.softplus(-critic_logits).mean()
            terms["reward"] = torch.sigmoid(critic_logits.detach()).mean()
        return terms

    def _optimizer_step(self, optimizer: Any, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.hparams.clip_grad_norm:
            self.clip_gradients(
                optimizer, gradient_clip_val=self.hparams.clip_grad_norm, gradient_clip_algorithm="norm"
            )
        optimizer.step()  # NonFiniteGuard (on_before_optimizer_step) drops non-finite gradients here

    def on_train_epoch_end(self) -> None:
        self._log_palette("train", self.train_palette)
        self.log("train/d_train_interval", float(self.d_train_interval), on_epoch=True)
        self.log("train/d_steps", float(self.d_steps), on_epoch=True)
        if self.balance is not None and self.balance.mode != "augment":
            accuracy = self.trainer.callback_metrics.get("train/d_acc_epoch")
            if accuracy is not None:  # one host read per epoch; every DDP rank must choose the same schedule
                accuracy = self.trainer.strategy.reduce(accuracy.to(self.device), reduce_op="mean")
                self.d_train_interval, self.d_steps = self.balance.adjust_schedule(
                    float(accuracy), self.d_train_interval, self.d_steps
                )

    # ------------------------------------------------------------ evaluation
    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._held_out_accuracy("val", batch[0])

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._held_out_accuracy("test", batch[0])

    def _held_out_accuracy(self, stage: str, real: torch.Tensor) -> None:
        """D's accuracy on held-out prints against EMA samples (next to train/d_acc it shows D overfitting)."""
        fake, weights = self.ema_generator(self._noise(real.shape[0]))
        real_logits, fake_logits = self.discriminator(real), self.discriminator(fake)
        accuracy = 0.5 * ((real_logits > 0).float().mean() + (fake_logits < 0).float().mean())
        self.log(f"{stage}/d_acc", accuracy, on_epoch=True, batch_size=real.shape[0], sync_dist=True)
        self.eval_palette.update(weights)

    def on_validation_epoch_end(self) -> None:
        self._log_palette("val", self.eval_palette)
        if self.trainer.sanity_checking:
            return
        images = self.sample_images(self.hparams.grid_size, self.hparams.grid_seed)
        self.log("val/diversity", mean_pairwise_distance(images), sync_dist=True)
        epoch = self.current_epoch
        report_figure(
            self,
            plot_sample_grid(images, f"EMA samples, epoch {epoch}"),
            "samples/grid",
            f"samples_epoch{epoch:03d}.png",
        )
        every = self.hparams.quality_every_n_epochs
        if self.quality is not None and every and (epoch + 1) % every == 0:
            self._log_quality("val")

    def on_test_epoch_end(self) -> None:
        self._log_palette("test", self.eval_palette)
        images = self.sample_images(max(self.hparams.grid_size, 2), self.hparams.grid_seed)
        self.log("test/diversity", mean_pairwise_distance(images), sync_dist=True)
        exact = palette_exact_share(images, self.ema_generator.palette.colors())
        self.log("test/palette_exact_share", exact, sync_dist=True)
        if self.quality is not None:
            self._log_quality("test")

    def _log_quality(self, stage: str) -> None:
        # validation ranks snapshots by the model's own FID/KID; the baselines are the test's
        table = self.quality(self, baselines=stage == "test")
        self.remember_fid_features(table)
        for key, value in table.items():
            self.log(f"{stage}/{key}", value, sync_dist=True)

    def _log_palette(self, stage: str, usage: PaletteUsage) -> None:
        if usage.update_count:
            for key, value in usage.compute().items():
                self.log(f"{stage}/palette_{key}", value, sync_dist=True)
        usage.reset()

    # --------------------------------------------------------------- sampling
    @property
    def ema_generator(self) -> UkiyoeGenerator:
        return self.generator_ema.module

    def build_generator(self) -> UkiyoeGenerator:
        """The generator as the run started (its config under its seed): the untrained baseline."""
        return untrained_model(self.trainer, "model.quality", quality=None).generator.to(self.device)

    def _noise(self, count: int, seed: int | None = None) -> torch.Tensor:
        if seed is None:
            return torch.randn(count, self.generator.z_dim, device=self.device)
        generator = torch.Generator().manual_seed(seed)
        return torch.randn(count, self.generator.z_dim, generator=generator).to(self.device)

    @torch.no_grad()
    def sample_images(self, num: int, seed: int, generator: nn.Module | None = None) -> torch.Tensor:
        """`num` images (num, 3, R, R) in [-1, 1] from the EMA (or the given) generator in eval mode; the same
        seed gives the same images (z and the NCA's update noise both come from it)."""
        return torch.cat(list(self._sample_batches(num, seed, generator)))

    def sample_uint8(self, num: int, seed: int, generator: nn.Module | None = None) -> Iterator[torch.Tensor]:
        """The same samples as uint8 batches (B, 3, R, R): the FID/KID sets."""
        return (to_uint8_image(images) for images in self._sample_batches(num, seed, generator))

    @torch.no_grad()
    def _sample_batches(self, num: int, seed: int, generator: nn.Module | None) -> Iterator[torch.Tensor]:
        generator = generator if generator is not None else self.ema_generator
        was_training = generator.training
        generator.eval()
        z = self._noise(num, seed)
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                for start in range(0, num, self.hparams.sample_batch_size):
                    yield generator(z[start : start + self.hparams.sample_batch_size])[0]
        finally:
            generator.train(was_training)

    def write_samples(
        self,
        out_dir: Path,
        num: int,
        seed: int,
        device: str = "auto",
        options: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """task=sample: `num` EMA samples -> `out_dir/grid.png` + `out_dir/samples.npz` (uint8 images, the
        palette). `sample.options.nca_steps` overrides the NCA's step count K."""
        options = dict(options or {})
        unknown = set(options) - {"nca_steps"}
        if unknown:
            raise UserError(
                f"sample.options: unknown keys {sorted(unknown)}; the ukiyoe GAN takes nca_steps."
            )
        if num < 1:
            raise UserError(f"sample.num={num}: ask for at least one sample.")
        self.to(sampling_device(device)).eval()
        nca = self.ema_generator.nca
        steps = int(options.get("nca_steps", nca.steps))
        with _nca_steps(nca, steps):
            pixels = torch.cat(list(self.sample_uint8(num, seed))).cpu()
        out_dir = Path(out_dir)
        grid = save_grid_png(out_dir / "grid.png", pixels)
        colors = to_uint8_image(self.ema_generator.palette.colors())
        arrays = out_dir / "samples.npz"
        np.savez(arrays, images=pixels.numpy(), palette=colors.cpu().numpy(), seed=seed, nca_steps=steps)
        return {
            "grid": str(grid),
            "arrays": str(arrays),
            "num": num,
            "resolution": list(pixels.shape[-2:]),
            "nca_steps": steps,
        }

    # ------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[SCHEDULE_KEY] = {
            "d_train_interval": self.d_train_interval,
            "d_steps": self.d_steps,
            "d_updates": self.d_updates,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        schedule = checkpoint.get(SCHEDULE_KEY, {})
        self.d_train_interval = int(schedule.get("d_train_interval", self.d_train_interval))
        self.d_steps = int(schedule.get("d_steps", self.d_steps))
        self.d_updates = int(schedule.get("d_updates", self.d_updates))


@contextlib.contextmanager
def _nca_steps(nca: nn.Module, steps: int) -> Iterator[None]:
    previous, nca.steps = nca.steps, steps
    try:
        yield
    finally:
        nca.steps = previous
