"""`FinetuneModel`: phase 3's fine-tune loop — the decoder trained toward higher grammar, judges frozen.

loss = diffusion loss − λ · R, with R the grammar reward of the decoder's own clean-image estimates:
for a training batch noised to timesteps t, x̂0 = predict_x0(x_t, t, the network's ε̂ or v̂) (the same forward pass as the
diffusion loss), read by the frozen encoder and abstractor (`GrammarReward`), and
    R = (1/B) Σ_i w(t_i) Σ_d grammar_d(x̂0_i),   w(t) = ᾱ_t for t < reward_max_timestep, else 0.
x̂0 is a blur of the data mean at large t (ᾱ_t → 0), and a reward on it would teach the decoder to paint
the judge's favourite average design; ᾱ_t weights each estimate by how much of the real image it carries.
To spend the judge only on samples it rewards (it is dearer than the decoder) without a host sync, each
batch is stratified: its first round(B · t_max / T) samples draw t uniformly from [0, t_max), the rest
from [t_max, T), so the diffusion loss still sees every timestep at (close to) its uniform share.
That reward only teaches the decoder to edit real designs it has almost denoised; the samples it draws
from noise take their layout at large t. `reward: samples` (the default) rewards those instead (DRaFT-K,
Clark et al. 2024): each step the decoder samples `reward_samples` designs of the batch's metadata from fresh noise with
`reward_steps` DDIM steps, the last `reward_grad_steps` of them with a graph, and
    R = (1/n) Σ_i Σ_d grammar_d(x0_i),
while the diffusion loss on the batch (uniform timesteps) holds the decoder to the data. With
`reward_letterbox` (the default) the judge reads every rewarded image with its letterbox painted in
(`grammar_reward.with_letterbox`): left free, the reward's gradient shifts letterbox pixels a few grey levels
until the encoder reads them as page, which the judge scores as better balance while the format is lost.

It is a `DecoderModel` (same `net`, `meta_tokens`, `noise_scheduler` config as the decoder it starts
from), so its checkpoints are decoder checkpoints: `task=sample` and the innovation stage load them as
such. The starting decoder (`decoder_checkpoint`), encoder and abstractor are loaded in `setup()` and kept
out of the state_dict (a plain dict). A fresh fit copies the starting decoder's weights in `setup()`; a
resumed fit gets the same copy, which Lightning then overwrites with the resumed checkpoint (it restores
weights after `setup()`), so resume continues the fine-tune rather than restarting it.

Validation logs the grammar of DDIM samples of fixed designs (fixed metadata and noise; the test's are
other ones, so the checkpoint validation picks is judged on designs it never saw) and measures
where the reward means something: `val/x0_grammar_gap/t<lo>-<hi>`, how far the judge's reading of x̂0
is from its reading of the real design, per fifth of [0, T) (`reward_max_timestep` belongs where the gap
is still small). Testing logs the samples' grammar for the starting decoder (`test/grammar/before/...`)
and the fine-tuned one (`.../after/...`) on the same designs, the judge's reading of the real test designs (`test/grammar/real/...`), the same by
`independent_judge` (other encoder and abstractor runs, never in the loss: `test/grammar_independent/...`)
when it is set, and, with `quality` (a
`DecoderQuality`), FID/KID of both decoders' samples beside the real and noise baselines, renamed
`.../before` and `.../after`, and `test/fid_ratio` = FID after / FID before (the target: ≤ 1.2).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from diffusers import DDPMScheduler
from pytorch_lightning.callbacks import WeightAveraging

from models.common.generative_quality import QualityTable
from models.design.decoder.module import DecoderModel, DiffusionTerms
from models.design.decoder.quality import DecoderQuality
from models.design.grammar_reward import (
    GrammarReward,
    before_after_tables,
    judged_tables,
    judges_of,
    phase3_judges,
    real_tables,
    reward_grammar,
)
from models.design.judged_designs import FixedDesigns, fixed_designs, judged_samples
from models.design.sampling import predict_x0
from models.design.stages import STAGES, existing_checkpoint
from training.toolkit.errors import UserError
from training.toolkit.stage_checkpoint import load_trained_module

STAGE = STAGES["finetune"]
DECODER_KEY = STAGE.key("decoder_checkpoint")
RENAMED = {"model": "after", "untrained": "before"}  # DecoderQuality's sample sets -> phase 3's
# what the judge reads: clean-image estimates of noised real designs, or the decoder's own samples
REWARDS = ("x0", "samples")
GAP_BANDS = 5  # timestep bands of the x̂0 grammar gap measured at validation


def same_diffusion(first: DDPMScheduler, second: DDPMScheduler) -> bool:
    """The same forward process (betas) and the same network target (noise or v)."""
    return first.config.prediction_type == second.config.prediction_type and torch.equal(
        first.betas, second.betas
    )


class FinetuneModel(DecoderModel):
    """A DecoderModel fine-tuned with `grammar_weight` λ times the frozen judges' grammar reward."""

    def __init__(
        self,
        decoder_checkpoint: str | None = None,
        encoder_checkpoint: str | None = None,
        abstractor_checkpoint: str | None = None,
        independent_judge: dict | None = None,
        grammar_weight: float = 0.1,
        reward: str = "samples",
        reward_letterbox: bool = True,
        reward_max_timestep: int = 400,
        reward_samples: int = 8,
        reward_steps: int = 10,
        reward_grad_steps: int = 1,
        eval_designs: int = 200,
        eval_seed: int = 0,
        **decoder: Any,
    ) -> None:
        super().__init__(**decoder)
        STAGE.require_checkpoints(self.hparams)
        if reward not in REWARDS:
            raise UserError(f"model.reward={reward!r} must be one of {', '.join(REWARDS)}.")
        if reward_samples < 1 or not 1 <= reward_grad_steps <= reward_steps:
            raise UserError(
                f"model.reward_samples={reward_samples}, model.reward_steps={reward_steps} and "
                f"model.reward_grad_steps={reward_grad_steps}: sample at least one design, and backpropagate "
                "through at least one and at most reward_steps DDIM steps."
            )
        if not 0 <= reward_max_timestep <= self.num_train_timesteps:
            raise UserError(
                f"model.reward_max_timestep={reward_max_timestep} must lie in [0, T = "
                f"{self.num_train_timesteps}] (0 turns the reward off)."
            )
        # validation picks the checkpoint on the designs of eval_seed + 1, so the test's, eval_seed's, are
        # ones the choice never saw (the ukiyoe grow loop's convention)
        self.designs: dict[str, FixedDesigns] = {
            split: fixed_designs(
                eval_designs,
                self.hparams.image_channels,
                self.hparams.resolution,
                eval_seed + offset,
                "model.eval_designs",
            )
            for split, offset in (("val", 1), ("test", 0))
        }
        # The starting decoder and the judges: a plain dict keeps them out of state_dict and parameters().
        self.frozen: dict[str, pl.LightningModule | GrammarReward] = {}

    @property
    def judge(self) -> GrammarReward:
        return self.frozen["judge"]

    @property
    def start(self) -> DecoderModel:
        """The decoder the fine-tune started from (frozen)."""
        return self.frozen["start"]

    # --- set-up ----------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        super().setup(stage)
        hp = self.hparams
        if not self.frozen:
            self.frozen.update(phase3_judges(hp))
            path = existing_checkpoint(hp.decoder_checkpoint, DECODER_KEY)
            self.frozen["start"] = load_trained_module(path, DECODER_KEY, expected=DecoderModel)
        if stage == "fit":
            self._reject_weight_averaging()
            self.start_from_decoder()

    def start_from_decoder(self) -> None:
        """Copy the starting decoder's weights (strictly: the same architecture, or a UserError)."""
        start = self.start
        if (start.hparams.resolution, start.hparams.image_channels) != (
            self.hparams.resolution,
            self.hparams.image_channels,
        ) or not same_diffusion(start.noise_scheduler, self.noise_scheduler):
            raise UserError(
                f"{DECODER_KEY}={self.hparams.decoder_checkpoint} samples {start.hparams.resolution}² images "
                f"with its own noise schedule and prediction type "
                f"({start.noise_scheduler.config.prediction_type}); the fine-tune must match: set data.resolution="
                f"{start.hparams.resolution} and the decoder run's model.noise_scheduler."
            )
        try:
            self.load_state_dict(start.state_dict(), strict=True)
        except RuntimeError as err:
            raise UserError(
                f"{DECODER_KEY}={self.hparams.decoder_checkpoint} holds another architecture than "
                "model.net / model.meta_tokens: give the fine-tune the same model overrides as the decoder "
                f"run (its checkpoint's stored config). {str(err)[:300]}"
            ) from err

    def _reject_weight_averaging(self) -> None:
        if any(isinstance(callback, WeightAveraging) for callback in self.trainer.callbacks):
            raise UserError(
                "callbacks: the fine-tune does not support EMA / weight averaging: Lightning copies the "
                "module for averaging before setup() loads model.decoder_checkpoint, so the average would "
                "start from random weights. Drop it (callbacks=default or callbacks.ema=null)."
            )

    def on_fit_start(self) -> None:
        self._frozen_to_device()

    def on_validation_start(self) -> None:
        self._frozen_to_device()

    def on_test_start(self) -> None:
        self._frozen_to_device()

    def _frozen_to_device(self) -> None:
        for module in self.frozen.values():
            module.to(self.device)

    # --- training --------------------------------------------------------------------------------
    def reward_count(self, batch_size: int) -> int:
        """How many samples of a batch get t < reward_max_timestep (and the reward)."""
        return round(batch_size * self.hparams.reward_max_timestep / self.num_train_timesteps)

    def stratified_timesteps(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """The first `reward_count` timesteps uniform in [0, t_max), the rest uniform in [t_max, T)."""
        limit, total = self.hparams.reward_max_timestep, self.num_train_timesteps
        count = self.reward_count(batch_size)
        parts = [torch.randint(0, limit, (count,), device=device)] if count else []
        if count < batch_size:
            parts.append(torch.randint(limit, total, (batch_size - count,), device=device))
        return torch.cat(parts)

    def grammar_reward(self, terms: DiffusionTerms, formats: torch.Tensor) -> torch.Tensor:
        """R = (1/B) Σ_i ᾱ_{t_i} Σ_d grammar_d(x̂0_i) over the batch's first `reward_count` samples (whose
        t < reward_max_timestep); differentiable in the decoder's weights through ε̂."""
        count = self.reward_count(terms.noisy.shape[0])
        if count == 0:
            return terms.loss.new_zeros(())
        noisy, timesteps, output = terms.noisy[:count], terms.timesteps[:count], terms.output[:count]
        clean = predict_x0(self.noise_scheduler, noisy, timesteps, output.to(noisy.dtype)).clamp(-1.0, 1.0)
        alphas_cumprod = self.noise_scheduler.alphas_cumprod.to(noisy.device)
        weight = alphas_cumprod[timesteps.long()]
        grammar = reward_grammar(self.judge, clean, formats[:count], self.hparams.reward_letterbox)
        return (weight * grammar.float().sum(dim=1)).sum() / terms.noisy.shape[0]

    def sample_reward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """R = (1/n) Σ_i Σ_d grammar_d(x0_i) of the decoder's DDIM samples x0 of the batch's first n =
        `reward_samples` designs' metadata, from fresh noise: differentiable through the last
        `reward_grad_steps` steps (DRaFT-K)."""
        hp = self.hparams
        count = hp.reward_samples
        formats = batch["format"][:count]
        samples = self.sample(
            batch["goal"][:count],
            formats,
            batch["tone"][:count],
            num_inference_steps=hp.reward_steps,
            sampler="ddim",
            grad=True,
            grad_last=hp.reward_grad_steps,
        )
        grammar = reward_grammar(self.judge, samples, formats, hp.reward_letterbox)
        return grammar.float().sum(dim=1).mean()

    def finetune_loss(
        self, batch: dict[str, torch.Tensor], drop: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, diffusion loss, R) of a batch with loss = diffusion − grammar_weight · R."""
        images = batch["image"]
        samples = self.hparams.reward == "samples"
        # the x̂0 reward reads the batch's own noised designs, so it stratifies their timesteps
        timesteps = None if samples else self.stratified_timesteps(images.shape[0], images.device)
        terms = self.diffusion_loss(
            images, batch["goal"], batch["format"], batch["tone"], drop=drop, timesteps=timesteps
        )
        reward = self.sample_reward(batch) if samples else self.grammar_reward(terms, batch["format"])
        return terms.loss - self.hparams.grammar_weight * reward, terms.loss, reward

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images = batch["image"]
        drop = torch.rand(images.shape[0], device=images.device) < self.hparams.condition_dropout
        loss, diffusion, reward = self.finetune_loss(batch, drop)
        size = images.shape[0]
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        self.log("train/diffusion_loss", diffusion, on_step=True, on_epoch=True, batch_size=size)
        self.log("train/grammar_reward", reward, on_step=True, on_epoch=True, batch_size=size)
        return loss

    # --- evaluation ------------------------------------------------------------------------------
    def designs_grammar(self, decoder: DecoderModel, split: str) -> dict[str, torch.Tensor]:
        """Each judge's grammar (N, 4) of `decoder`'s DDIM samples of the `split`'s fixed designs (the same
        noise every time)."""
        with self.trainer.precision_plugin.forward_context():
            return judged_samples(decoder, judges_of(self.frozen), self.designs[split])[1]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        super().validation_step(batch, batch_idx)
        if batch_idx == 0:
            self.log_dict(self.x0_grammar_gap(batch), sync_dist=True)

    @torch.no_grad()
    def x0_grammar_gap(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """How far the judge's reading of x̂0 is from its reading of the real x0, by timestep band: the
        measurement behind `reward_max_timestep`. The batch is noised (seeded noise) to timesteps spread
        evenly over [0, T); `val/x0_grammar_gap/t<lo>-<hi>` is the mean |grammar(x̂0) − grammar(x0)| over
        the designs whose t falls in each fifth of [0, T) and the four scores."""
        images = batch["image"]
        size, total = images.shape[0], self.num_train_timesteps
        generator = torch.Generator(device=images.device).manual_seed(self.hparams.val_noise_seed)
        noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
        timesteps = ((torch.arange(size, device=images.device) + 0.5) * total / size).long()
        terms = self.diffusion_loss(
            images, batch["goal"], batch["format"], batch["tone"], noise=noise, timesteps=timesteps
        )
        clean = predict_x0(self.noise_scheduler, terms.noisy, timesteps, terms.output.to(images.dtype))
        gap = (self.judge(clean.clamp(-1.0, 1.0)) - self.judge(images)).abs().mean(dim=1)
        width = total // GAP_BANDS
        bands = {}
        for lo in range(0, total, width):
            inside = (timesteps >= lo) & (timesteps < lo + width)
            if inside.any():  # once per validation: the host sync is fine here
                bands[f"val/x0_grammar_gap/t{lo}-{lo + width - 1}"] = gap[inside].mean()
        return bands

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self.trainer.sanity_checking:
            return
        # every rank samples the same designs, so the numbers agree without a reduction
        self.log_dict(judged_tables(self.designs_grammar(self, "val"), "val"), sync_dist=False)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        super().test_step(batch, batch_idx)
        table = real_tables(judges_of(self.frozen), batch)
        self.log_dict(table, on_epoch=True, sync_dist=True, batch_size=len(batch["image"]))

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()  # FID/KID of the starting and the fine-tuned decoder (evaluate_quality)
        table = before_after_tables(
            self.designs_grammar(self.start, "test"), self.designs_grammar(self, "test")
        )
        self.log_dict(table, sync_dist=False)

    def evaluate_quality(self) -> dict[str, float]:
        """`quality` (a `DecoderQuality` factory: `_partial_: true`, so that a missing stage checkpoint is
        reported by this module, naming every key) with the starting decoder in its "untrained" slot: both
        decoders sample the same test metadata from the same noise. Sets renamed `before` / `after`, plus
        `fid_ratio` (after / before)."""
        if self.quality is None:
            return {}
        evaluator: DecoderQuality = self.quality()
        table = evaluator.evaluate(self, self.trainer.datamodule, self.start)
        renamed = {}
        for name, value in table.items():
            head, _, last = name.rpartition("/")
            renamed[f"{head}/{RENAMED.get(last, last)}"] = value
        renamed["fid_ratio"] = renamed["fid/after"] / renamed["fid/before"]
        return QualityTable(renamed, features=table.features)
