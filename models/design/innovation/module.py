"""`InnovationModel`: phase 3's innovation loop — the sampler's initial latents optimised toward grammar.

The decoder, encoder and abstractor are frozen; the module's only parameters are the initial latents
x_T (N, C, R, R) of N fixed designs (goals x formats in turn, seeded tones and noise: `fixed_designs`).
Each training step runs the deterministic DDIM sampler (eta = 0) from the latents with gradients
(`grad_checkpoint` recomputes each denoising step in the backward pass instead of storing it), reads the
samples' grammar with the frozen judges (`GrammarReward`) and descends

    loss = − mean grammar + prior_weight · mean_i (‖z_i‖² / d − 1)²,   d = C · R · R,

the second term keeping each latent on the shell where a d-dimensional standard normal lives
(‖z‖² / d = 1 ± sqrt(2 / d)), so the samples stay in the distribution the decoder was trained on.

Training batches are only a step clock (`InnovationDM`: `steps_per_epoch` indices per epoch); the
optimiser is the config's (Adam on the latents). Testing judges the samples of the initial and the
optimised latents (`test/grammar/before|after/...`, `test/grammar_gain`), the real test designs
(`test/grammar/real/...`); with `independent_judge` (other encoder and abstractor runs, never optimised
against) the same under `test/grammar_independent/...`; and it measures FID/KID of both sample sets against real training designs beside
the real-vs-real and noise baselines (`feature: auto`: the standard Inception features when installed, else
the design features; `fid_ratio` = after / before; summary.json's `fid_features` names them); it writes
both sets (grid.png, samples.npz with latents and per-sample grammar) under `<run>/innovation/` and a
before/after figure under `<run>/images/`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn

from models.common.feature_extractors import AUTO, select_feature_extractor
from models.common.generative_quality import (
    NOISE,
    REAL_VS_REAL,
    QualityTable,
    ReportsFidFeatures,
    noise_images,
    quality_table,
)
from models.design.decoder.module import DecoderModel
from models.design.decoder.samples import write_sample_files
from models.design.grammar_reward import (
    JUDGED_AS,
    GrammarReward,
    before_after_tables,
    grammar_table,
    judges_of,
    phase3_judges,
    real_tables,
    reward_grammar,
)
from models.design.innovation.plots import plot_before_after
from models.design.judged_designs import fixed_designs, judged_samples
from models.design.stages import STAGES, existing_checkpoint
from training.toolkit.errors import UserError
from training.toolkit.figures import report_figure
from training.toolkit.sample_files import to_uint8_image
from training.toolkit.stage_checkpoint import load_trained_module

STAGE = STAGES["innovation"]
DECODER_KEY = STAGE.key("decoder_checkpoint")
BEFORE, AFTER = "before", "after"


def shell_penalty(latents: torch.Tensor) -> torch.Tensor:
    """mean_i (‖z_i‖² / d − 1)² over latents (N, ...): 0 on the standard normal's typical shell."""
    return (latents.flatten(1).pow(2).mean(dim=1) - 1.0).pow(2).mean()


class InnovationModel(ReportsFidFeatures, pl.LightningModule):
    """Gradient ascent on the frozen judges' grammar of a frozen decoder's DDIM samples, over their latents."""

    def __init__(
        self,
        optimizer: Callable[[Iterable], torch.optim.Optimizer],
        lr_schedule: dict | None = None,
        decoder_checkpoint: str | None = None,
        encoder_checkpoint: str | None = None,
        abstractor_checkpoint: str | None = None,
        independent_judge: dict | None = None,
        num_latents: int = 20,
        resolution: int = 32,
        image_channels: int = 3,
        seed: int = 0,
        sample_steps: int = 10,
        guidance_scale: float | None = None,
        prior_weight: float = 10.0,
        reward_letterbox: bool = True,
        grad_checkpoint: bool = True,
        feature: str = AUTO,
        inception_weights: str | None = None,
        feature_cache: str | None = None,
        kid_subset_size: int = 100,
        kid_subsets: int = 50,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["optimizer", "lr_schedule"])
        STAGE.require_checkpoints(self.hparams)
        self.optimizer_factory = optimizer
        self.lr_schedule = lr_schedule
        self.designs = fixed_designs(num_latents, image_channels, resolution, seed, "model.num_latents")
        self.latents = nn.Parameter(self.designs.latents.clone())
        # The frozen decoder and judges: a plain dict keeps them out of state_dict and parameters().
        self.frozen: dict[str, pl.LightningModule | GrammarReward] = {}

    @property
    def decoder(self) -> DecoderModel:
        return self.frozen["decoder"]

    @property
    def judge(self) -> GrammarReward:
        return self.frozen["judge"]

    # --- set-up ----------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.frozen:
            return
        hp = self.hparams
        self.frozen.update(phase3_judges(hp))
        path = existing_checkpoint(hp.decoder_checkpoint, DECODER_KEY)
        decoder = load_trained_module(path, DECODER_KEY, expected=DecoderModel)
        if (decoder.hparams.resolution, decoder.hparams.image_channels) != (hp.resolution, hp.image_channels):
            raise UserError(
                f"{DECODER_KEY}={path} samples {decoder.hparams.image_channels} x "
                f"{decoder.hparams.resolution}² images, but the latents are {hp.image_channels} x "
                f"{hp.resolution}²: set data.resolution={decoder.hparams.resolution} (model.resolution follows it)."
            )
        self.frozen["decoder"] = decoder

    def on_fit_start(self) -> None:
        self._frozen_to_device()

    def on_test_start(self) -> None:
        self._frozen_to_device()

    def _frozen_to_device(self) -> None:
        for module in self.frozen.values():
            module.to(self.device)

    # --- optimisation ----------------------------------------------------------------------------
    def objective(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, grammar (N, 4), shell penalty) of the current latents; loss = −mean grammar + w · penalty.
        The grammar is the judge's reading of the decoder's DDIM samples, differentiable in the latents."""
        request = self.designs.request
        images = self.decoder.sample(
            request.goal,
            request.format,
            request.tone,
            num_inference_steps=self.hparams.sample_steps,
            guidance_scale=self.hparams.guidance_scale,
            latents=self.latents,
            sampler="ddim",
            grad=True,
            grad_checkpoint=self.hparams.grad_checkpoint,
        )
        grammar = reward_grammar(self.judge, images, request.format, self.hparams.reward_letterbox)
        penalty = shell_penalty(self.latents)
        return -grammar.mean() + self.hparams.prior_weight * penalty, grammar, penalty

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss, grammar, penalty = self.objective()
        size = len(self.latents)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        self.log("train/shell_penalty", penalty, on_step=True, on_epoch=True, batch_size=size)
        norm = self.latents.detach().flatten(1).pow(2).mean(dim=1).sqrt().mean()
        self.log("train/latent_rms", norm, on_step=True, on_epoch=True, batch_size=size)
        self.log_dict(
            grammar_table(grammar.detach(), "train/grammar"), on_step=True, on_epoch=True, batch_size=size
        )
        return loss

    def configure_optimizers(self) -> dict:
        from training.toolkit.optim import configure_optimization

        return configure_optimization(self, self.optimizer_factory, self.lr_schedule)

    # --- evaluation ------------------------------------------------------------------------------
    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        table = real_tables(judges_of(self.frozen), batch)
        self.log_dict(table, on_epoch=True, sync_dist=True, batch_size=len(batch["image"]))

    def on_test_epoch_end(self) -> None:
        start = self.designs.latents.to(self.device)
        judges, steps = judges_of(self.frozen), self.hparams.sample_steps
        with self.trainer.precision_plugin.forward_context():
            before = judged_samples(self.decoder, judges, self.designs, start, steps)
            after = judged_samples(self.decoder, judges, self.designs, self.latents.detach(), steps)
        self.log_dict(before_after_tables(before[1], after[1]), sync_dist=False)
        quality = self.quality(before[0], after[0])
        self.remember_fid_features(quality)
        self.log_dict({f"test/{name}": value for name, value in quality.items()}, sync_dist=False)
        if self.trainer.is_global_zero:
            self.write_results({BEFORE: before, AFTER: after}, {BEFORE: start, AFTER: self.latents.detach()})

    def quality(self, before: torch.Tensor, after: torch.Tensor) -> QualityTable:
        """FID/KID of both sample sets (N images each) against N real training designs, beside N real test
        designs (`real_vs_real`) and N noise images, with the configured features (`feature: auto`: Inception
        when its weights are installed, else the design features); plus `fid_ratio`."""
        datamodule = self.trainer.datamodule
        count = len(self.latents)
        extractor = select_feature_extractor(
            self.hparams.feature,
            inception_weights=self.hparams.inception_weights,
            trained={"design": lambda: self.judge.reader},
            config_key="model",
        )
        batch_size = datamodule.test_dataloader().batch_size
        table = quality_table(
            extractor,
            first_images(datamodule.reference_dataloader(), count),
            {
                REAL_VS_REAL: first_images(datamodule.test_dataloader(), count),
                BEFORE: [to_uint8_image(before)],
                AFTER: [to_uint8_image(after)],
                NOISE: noise_images(count, before.shape[1:], batch_size=batch_size, seed=self.hparams.seed),
            },
            subset_size=self.hparams.kid_subset_size,
            subsets=self.hparams.kid_subsets,
            seed=self.hparams.seed,
            device=self.device,
            config_key="model",
            feature_cache=self.hparams.feature_cache,
        )
        table["fid_ratio"] = table[f"fid/{AFTER}"] / table[f"fid/{BEFORE}"]
        return table

    def write_results(
        self,
        judged: dict[str, tuple[torch.Tensor, dict[str, torch.Tensor]]],
        latents: dict[str, torch.Tensor],
    ) -> None:
        """`<run>/innovation/<before|after>/{grid.png, samples.npz}` (with latents and each judge's
        per-sample grammar: `grammar`, `grammar_independent`) and the before/after figure."""
        out_dir = Path(self.trainer.default_root_dir) / "innovation"
        for name, (images, scores) in judged.items():
            write_sample_files(
                out_dir / name,
                images.float().cpu(),
                self.designs.request,
                latents=latents[name].float().cpu().numpy(),
                **{JUDGED_AS[judge]: grammar.float().cpu().numpy() for judge, grammar in scores.items()},
                steps=self.hparams.sample_steps,
                guidance_scale=self.decoder.hparams.guidance_scale
                if self.hparams.guidance_scale is None
                else self.hparams.guidance_scale,
            )
        figure = plot_before_after(
            judged[BEFORE][0].float().cpu(),
            judged[AFTER][0].float().cpu(),
            judged[BEFORE][1]["judge"].float().mean().item(),
            judged[AFTER][1]["judge"].float().mean().item(),
        )
        report_figure(self, figure, "test/innovation", "innovation_before_after.png")


def first_images(loader: Iterable[dict[str, torch.Tensor]], count: int) -> Iterator[torch.Tensor]:
    """The uint8 images of a design loader's batches, `count` in all (the last batch cut)."""
    taken = 0
    for batch in loader:
        if taken >= count:
            return
        images = batch["image"][: count - taken]
        taken += len(images)
        yield images
