"""`DecoderModel`: trains the conditional DDPM decoder (V_Meta -> design image) and samples from it.

Training is the epsilon- or v-prediction loss (the scheduler's `prediction_type`) at uniform random timesteps
of a diffusers `DDPMScheduler`, optionally Min-SNR-gamma weighted (Hang et al. 2023), with the metadata dropped (NULL tokens) for a share of samples so that classifier-free guidance works at
sampling time. Validation reports a loss at fixed timesteps and fixed noise (comparable across epochs) and
a goal x format sample grid; EMA weights, when the `ema` callback is on, are what validation, samples and
checkpoints use (Lightning's EMAWeightAveraging swaps them in).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from diffusers.training_utils import compute_snr
from torch import nn

from models.common.generative_quality import ReportsFidFeatures
from models.design.decoder.samples import (
    grid_metadata,
    parse_sample_options,
    plot_sample_grid,
    write_sample_files,
)
from models.design.nets.meta_tokens import MetaTokens
from models.design.sampling import PREDICTIONS, SAMPLERS, initial_noise, reverse_diffusion, sampling_scheduler
from training.toolkit.errors import UserError
from training.toolkit.figures import report_figure
from training.toolkit.net_options import NetOptions
from training.toolkit.sample_files import sampling_device


@dataclass
class DiffusionTerms:
    """One evaluation of the diffusion objective: the loss and what phase 3 needs to form x0 predictions
    (`predict_x0(module.noise_scheduler, terms.noisy, terms.timesteps, terms.output)`)."""

    loss: torch.Tensor
    noisy: torch.Tensor
    timesteps: torch.Tensor
    output: torch.Tensor  # the network's prediction: the noise, or the velocity v
    noise: torch.Tensor


class DecoderModel(ReportsFidFeatures, NetOptions, pl.LightningModule):
    """Conditional DDPM on design images: `net` predicts the noise (or v) given the `meta_tokens` of V_Meta."""

    def __init__(
        self,
        net: nn.Module,
        meta_tokens: MetaTokens,
        noise_scheduler: DDPMScheduler,
        optimizer: Callable[[Iterable], torch.optim.Optimizer],
        lr_schedule: dict | None = None,
        resolution: int = 32,
        image_channels: int = 3,
        condition_dropout: float = 0.1,
        sampler: str = "ddim",
        sample_steps: int = 25,
        guidance_scale: float = 3.0,
        grid_per_pair: int = 2,
        grid_seed: int = 0,
        val_noise_seed: int = 0,
        quality: Callable[[pl.LightningModule], Mapping[str, float]] | None = None,
        compile: bool = False,
        channels_last: bool = False,
        snr_gamma: float | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(
            logger=False,
            ignore=["net", "meta_tokens", "noise_scheduler", "optimizer", "lr_schedule", "quality"],
        )
        if noise_scheduler.config.prediction_type not in PREDICTIONS:
            raise UserError(
                f"model.noise_scheduler.prediction_type={noise_scheduler.config.prediction_type!r}: the decoder "
                "predicts the noise (epsilon) or the velocity (v_prediction)."
            )
        if snr_gamma is not None and snr_gamma <= 0:
            raise UserError(f"model.snr_gamma={snr_gamma}: use a positive gamma (5 is the paper's) or null.")
        if not 0.0 <= condition_dropout < 1.0:
            raise UserError(f"model.condition_dropout must be in [0, 1), got {condition_dropout}.")
        if sampler not in SAMPLERS:
            raise UserError(f"model.sampler={sampler!r}: use ddim (few deterministic steps) or ddpm (all T).")
        self.net = net
        self.meta_tokens = meta_tokens
        self.noise_scheduler = noise_scheduler
        self.optimizer_factory = optimizer
        self.lr_schedule = lr_schedule
        self.quality = quality

    @property
    def num_train_timesteps(self) -> int:
        return int(self.noise_scheduler.config.num_train_timesteps)

    def forward(self, noisy: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """eps (or v) prediction for x_t (B, C, H, W) at `timesteps` given meta tokens (B, 3, D)."""
        noisy = self.net_input(noisy)
        return self.net(noisy, timesteps, context)

    def diffusion_loss(
        self,
        images: torch.Tensor,
        goal: torch.Tensor,
        format: torch.Tensor,
        tone: torch.Tensor,
        drop: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        timesteps: torch.Tensor | None = None,
    ) -> DiffusionTerms:
        """MSE between the network's output and its target (the noise, or v) for `images` (in [-1, 1])
        noised to `timesteps` (default: uniform random) with `noise` (default: standard normal), each sample
        weighted by `loss_weights`; `drop` (B,) bool NULLs the metadata of those samples."""
        if noise is None:
            noise = torch.randn_like(images)
        if timesteps is None:
            timesteps = torch.randint(0, self.num_train_timesteps, (images.shape[0],), device=images.device)
        noisy = self.noise_scheduler.add_noise(images, noise, timesteps)
        output = self(noisy, timesteps, self.meta_tokens(goal, format, tone, drop))
        if self.noise_scheduler.config.prediction_type == "v_prediction":
            target = self.noise_scheduler.get_velocity(images, noise, timesteps)
        else:
            target = noise
        per_sample = F.mse_loss(output.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
        loss = (self.loss_weights(timesteps) * per_sample).mean()
        return DiffusionTerms(loss, noisy, timesteps, output, noise)

    def loss_weights(self, timesteps: torch.Tensor) -> torch.Tensor:
        """Per-sample loss weights (B,): 1, or with `snr_gamma` Min-SNR-gamma's min(SNR, gamma) / SNR for
        epsilon and min(SNR, gamma) / (SNR + 1) for v (both weigh the x0 error by min(SNR, gamma))."""
        gamma = self.hparams.snr_gamma
        if gamma is None:
            return torch.ones(timesteps.shape, device=timesteps.device)
        snr = compute_snr(self.noise_scheduler, timesteps)
        if self.noise_scheduler.config.prediction_type == "v_prediction":
            return snr.clamp(max=gamma) / (snr + 1.0)
        return snr.clamp(max=gamma) / snr

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images = batch["image"]
        drop = torch.rand(images.shape[0], device=images.device) < self.hparams.condition_dropout
        loss = self.diffusion_loss(images, batch["goal"], batch["format"], batch["tone"], drop=drop).loss
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=images.shape[0])
        return loss

    def fixed_noise_loss(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """The conditional diffusion loss with noise seeded by the batch index and timesteps spread evenly
        over [0, T): the same number for the same weights, so epochs (and runs) compare."""
        images = batch["image"]
        size = images.shape[0]
        generator = torch.Generator(device=images.device).manual_seed(self.hparams.val_noise_seed + batch_idx)
        noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
        timesteps = (
            (torch.arange(size, device=images.device) + 0.5) * self.num_train_timesteps / size
        ).long()
        return self.diffusion_loss(
            images, batch["goal"], batch["format"], batch["tone"], noise=noise, timesteps=timesteps
        ).loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss = self.fixed_noise_loss(batch, batch_idx)
        self.log(
            "val/loss", loss, on_epoch=True, prog_bar=True, sync_dist=True, batch_size=len(batch["image"])
        )

    def on_validation_epoch_start(self) -> None:
        # Drawn here, not at epoch end: Lightning runs callback hooks first, so EMAWeightAveraging has
        # swapped the averaged weights in at this point and swaps them out before our epoch-end hook.
        if self.trainer.sanity_checking or not self.trainer.is_global_zero or self.hparams.grid_per_pair < 1:
            return
        goal, format, tone = grid_metadata(self.hparams.grid_per_pair, self.hparams.grid_seed)
        generator = torch.Generator().manual_seed(self.hparams.grid_seed)
        with self.trainer.precision_plugin.forward_context():
            images = self.sample(goal, format, tone, generator=generator)
        figure = plot_sample_grid(images.float(), self.hparams.grid_per_pair)
        report_figure(self, figure, "val/samples", f"samples_epoch{self.current_epoch:03d}.png")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss = self.fixed_noise_loss(batch, batch_idx)
        self.log("test/loss", loss, on_epoch=True, sync_dist=True, batch_size=len(batch["image"]))

    def on_test_epoch_end(self) -> None:
        table = self.evaluate_quality()
        self.remember_fid_features(table)
        for name, value in table.items():
            self.log(f"test/{name}", value)

    def evaluate_quality(self) -> dict[str, float]:
        """Test-time sample quality (FID/KID beside their baselines, conditioning fidelity): `quality` is a
        callable taking this module and returning `{name: value}` (logged as `test/<name>`), e.g.
        models.design.decoder.quality.DecoderQuality; None measures nothing."""
        if self.quality is None:
            return {}
        table = self.quality(self)
        return table if isinstance(table, dict) else dict(table)  # a QualityTable keeps its `features`

    def inference_steps(self, sampler: str, steps: int | None) -> int:
        """Reverse steps: `steps` when given, else `sample_steps` for DDIM and all T for DDPM."""
        if steps is not None:
            return steps
        return self.hparams.sample_steps if sampler == "ddim" else self.num_train_timesteps

    def sample(
        self,
        goal: torch.Tensor,
        format: torch.Tensor,
        tone: torch.Tensor,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        generator: torch.Generator | None = None,
        latents: torch.Tensor | None = None,
        sampler: str | None = None,
        grad: bool = False,
        grad_checkpoint: bool = False,
        grad_last: int | None = None,
    ) -> torch.Tensor:
        """Images (B, C, H, W) in [-1, 1] for metadata goal/format (B,) and tone (B, 2).

        The initial noise is `latents` or drawn from `generator` (a CPU generator gives the same noise on
        every device); guidance scale and sampler default to the module's, steps to `inference_steps`.
        `grad=True` keeps the autograd graph through the whole loop (phase 3 optimises `latents` through
        the deterministic DDIM sampler; `grad_checkpoint=True` trades compute for memory there; `grad_last`
        = K keeps it through the last K steps only, as the fine-tune's sample reward does).
        """
        sampler = sampler or self.hparams.sampler
        size = self.hparams.resolution
        if latents is None:
            latents = initial_noise(
                (len(goal), self.hparams.image_channels, size, size), generator, self.device
            )
        with contextlib.nullcontext() if grad else torch.no_grad():
            context = self.meta_tokens(goal.to(self.device), format.to(self.device), tone.to(self.device))
            return reverse_diffusion(
                self,
                sampling_scheduler(sampler, self.noise_scheduler),
                latents,
                context,
                self.meta_tokens.null_tokens(len(goal)),
                guidance_scale=self.hparams.guidance_scale if guidance_scale is None else guidance_scale,
                num_inference_steps=self.inference_steps(sampler, num_inference_steps),
                generator=generator,
                grad=grad,
                grad_checkpoint=grad_checkpoint,
                grad_last=grad_last,
            )

    def write_samples(
        self,
        out_dir: Path,
        num: int,
        seed: int,
        device: str = "auto",
        options: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """task=sample: `num` samples for the metadata in `options` (goal, format, tone, guidance_scale,
        steps, sampler, batch_size; see samples.parse_sample_options) -> `out_dir/grid.png` and
        `out_dir/samples.npz`. The same seed gives the same samples."""
        generator = torch.Generator().manual_seed(seed)
        request = parse_sample_options(num, options or {}, generator)
        self.to(sampling_device(device)).eval()
        chunks = []
        for start in range(0, num, request.batch_size):
            part = slice(start, start + request.batch_size)
            images = self.sample(
                request.goal[part],
                request.format[part],
                request.tone[part],
                num_inference_steps=request.steps,
                guidance_scale=request.guidance_scale,
                generator=generator,
                sampler=request.sampler,
            )
            chunks.append(images.cpu())
        return write_sample_files(
            Path(out_dir),
            torch.cat(chunks),
            request,
            seed=seed,
            sampler=request.sampler,
            steps=self.inference_steps(request.sampler, request.steps),
            guidance_scale=self.hparams.guidance_scale
            if request.guidance_scale is None
            else request.guidance_scale,
        )

    def configure_optimizers(self) -> dict:
        from training.toolkit.optim import configure_optimization

        return configure_optimization(self, self.optimizer_factory, self.lr_schedule)
