"""DecoderModel: the diffusion objective learns, validation numbers repeat, the validation grid and the
quality hook run inside a Trainer, and `task=sample` writes the requested samples."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler
from PIL import Image
from pytorch_lightning.callbacks import Callback, EMAWeightAveraging
from torch.utils.data import DataLoader, StackDataset

from models.design.decoder.module import DecoderModel
from models.design.nets.meta_tokens import MetaTokens
from models.design.sampling import predict_x0
from models.design.schema import FORMAT_NAMES, GOALS
from tests.helpers import forbid_host_syncs, quiet_trainer
from tests.models.design.tiny_decoder import CONTEXT_DIM, RESOLUTION, tiny_decoder, tiny_unet, toy_designs
from training.toolkit.errors import UserError


def test_a_few_steps_on_a_fixed_batch_reduce_the_diffusion_loss():
    decoder = tiny_decoder(seed=0)
    batch = toy_designs(8)
    generator = torch.Generator().manual_seed(1)
    noise = torch.randn(batch["image"].shape, generator=generator)
    timesteps = torch.randint(0, 1000, (8,), generator=generator)

    def loss() -> torch.Tensor:
        return decoder.diffusion_loss(
            batch["image"], batch["goal"], batch["format"], batch["tone"], noise=noise, timesteps=timesteps
        ).loss

    optimizer = torch.optim.Adam(decoder.parameters(), lr=1e-2)
    before = loss().item()
    for _ in range(15):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    assert before == pytest.approx(1.0, abs=0.3)  # eps ~ N(0, 1) against a near-zero initial prediction
    assert loss().item() < 0.6 * before


def test_the_diffusion_terms_give_phase_3_its_x0_prediction():
    decoder = tiny_decoder(seed=0)
    batch = toy_designs(4)
    terms = decoder.diffusion_loss(batch["image"], batch["goal"], batch["format"], batch["tone"])
    assert terms.loss.item() == pytest.approx(torch.mean((terms.output - terms.noise) ** 2).item())
    # with the true noise the prediction is exactly the clean image; the model's own differs from it
    exact = predict_x0(decoder.noise_scheduler, terms.noisy, terms.timesteps, terms.noise)
    assert torch.allclose(exact, batch["image"], atol=1e-3)
    estimate = predict_x0(decoder.noise_scheduler, terms.noisy, terms.timesteps, terms.output)
    (gradient,) = torch.autograd.grad(estimate.mean(), decoder.net.conv_out.weight)
    assert gradient.abs().sum() > 0


def alpha_bar(decoder: DecoderModel, timesteps: torch.Tensor) -> torch.Tensor:
    return decoder.noise_scheduler.alphas_cumprod[timesteps].reshape(-1, 1, 1, 1)


def test_v_prediction_regresses_the_velocity_and_its_x0_is_exact_for_the_true_v():
    decoder = tiny_decoder(seed=0, prediction_type="v_prediction")
    batch = toy_designs(4)
    terms = decoder.diffusion_loss(batch["image"], batch["goal"], batch["format"], batch["tone"])
    abar = alpha_bar(decoder, terms.timesteps)
    velocity = abar.sqrt() * terms.noise - (1 - abar).sqrt() * batch["image"]
    assert terms.loss.item() == pytest.approx(torch.mean((terms.output - velocity) ** 2).item(), rel=1e-5)
    exact = predict_x0(decoder.noise_scheduler, terms.noisy, terms.timesteps, velocity)
    assert torch.allclose(
        exact, batch["image"], atol=1e-5
    )  # no division by sqrt(abar): float32 rounding only


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_min_snr_weights_cap_the_x0_error_weight_at_gamma(prediction_type):
    decoder = tiny_decoder(seed=0, prediction_type=prediction_type, snr_gamma=5.0)
    timesteps = torch.tensor([0, 50, 200, 400, 999])
    abar = alpha_bar(decoder, timesteps).flatten().double()
    snr = abar / (1 - abar)  # t = 0: ~1e4; t = 200: ~2.0; t = 999: ~4e-5
    x0_weight = snr.clamp(max=5.0)  # Hang et al.: the x0 error weighted by min(SNR, gamma)
    # an eps error is an x0 error times sqrt(SNR) (x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar)); a v error
    # times sqrt(SNR + 1): dividing those squared factors out gives the loss weight of each parameterisation
    expected = x0_weight / (snr if prediction_type == "epsilon" else snr + 1)
    assert torch.allclose(decoder.loss_weights(timesteps).double(), expected, rtol=1e-5)
    assert decoder.loss_weights(timesteps)[0].item() < 1e-3  # the nearly clean steps stop dominating
    batch = toy_designs(5)
    noise = torch.randn(batch["image"].shape, generator=torch.Generator().manual_seed(2))
    terms = decoder.diffusion_loss(
        batch["image"], batch["goal"], batch["format"], batch["tone"], noise=noise, timesteps=timesteps
    )
    target = (
        noise
        if prediction_type == "epsilon"
        else (
            alpha_bar(decoder, timesteps).sqrt() * noise
            - (1 - alpha_bar(decoder, timesteps)).sqrt() * batch["image"]
        )
    )
    per_sample = ((terms.output - target) ** 2).mean(dim=(1, 2, 3))
    assert terms.loss.item() == pytest.approx((expected.float() * per_sample).mean().item(), rel=1e-5)


def test_the_fixed_noise_loss_repeats_exactly_and_spreads_timesteps_over_the_range():
    decoder = tiny_decoder(seed=0).eval()
    batch = toy_designs(8)
    with torch.no_grad():
        first, second = decoder.fixed_noise_loss(batch, 0), decoder.fixed_noise_loss(batch, 0)
        other_batch = decoder.fixed_noise_loss(batch, 1)
    assert first.item() == second.item()
    assert first.item() != other_batch.item()  # each batch index has its own noise


def loader(count: int, seed: int) -> DataLoader:
    designs = toy_designs(count, seed)
    return DataLoader(StackDataset(**designs), batch_size=8)


def test_training_step_never_syncs_with_the_host(tmp_path):
    decoder = tiny_decoder(seed=0)
    unguarded_step = decoder.training_step

    def guarded_step(*args, **kwargs) -> torch.Tensor:
        with forbid_host_syncs():
            return unguarded_step(*args, **kwargs)

    decoder.training_step = guarded_step
    trainer = quiet_trainer(tmp_path, log_every_n_steps=1, limit_val_batches=0)
    trainer.fit(decoder, train_dataloaders=loader(16, 0))
    assert trainer.global_step == 2
    assert torch.isfinite(trainer.callback_metrics["train/loss_epoch"])


def mean_brightness(module: DecoderModel, samples: int) -> dict[str, float]:
    """A stand-in quality evaluator (the real one is models.design.decoder.quality.DecoderQuality)."""
    images = module.sample(
        torch.zeros(samples, dtype=torch.long),
        torch.zeros(samples, dtype=torch.long),
        torch.full((samples, 2), 0.5),
        generator=torch.Generator().manual_seed(0),
    )
    return {"quality/brightness": images.mean().item()}


def test_fit_with_ema_draws_the_validation_grid_and_test_runs_the_quality_evaluator(tmp_path):
    quality = functools.partial(mean_brightness, samples=2)
    decoder = tiny_decoder(seed=0, quality=quality)
    trainer = quiet_trainer(
        tmp_path,
        max_epochs=2,
        limit_train_batches=2,
        callbacks=[EMAWeightAveraging(decay=0.9, update_starting_at_step=1)],
    )
    trainer.fit(decoder, train_dataloaders=loader(16, 0), val_dataloaders=loader(8, 1))
    assert torch.isfinite(trainer.callback_metrics["val/loss"])
    grids = sorted(p.name for p in (tmp_path / "images").glob("samples_epoch*.png"))
    assert grids == ["samples_epoch000.png", "samples_epoch001.png"]

    tested = trainer.test(decoder, dataloaders=loader(8, 2), verbose=False)[0]
    assert tested["test/quality/brightness"] == pytest.approx(
        mean_brightness(decoder, 2)["quality/brightness"]
    )
    assert np.isfinite(tested["test/loss"])


class LastTrainingWeights(Callback):
    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        self.weight = pl_module.net.conv_out.weight.detach().clone()


def test_the_validation_grid_is_drawn_with_the_averaged_weights(tmp_path):
    decoder = tiny_decoder(seed=0)
    initial = decoder.net.conv_out.weight.detach().clone()
    drawn_with = []
    unspied_sample = decoder.sample

    def spied_sample(*args, **kwargs) -> torch.Tensor:
        drawn_with.append(decoder.net.conv_out.weight.detach().clone())
        return unspied_sample(*args, **kwargs)

    decoder.sample = spied_sample
    training = LastTrainingWeights()
    # an average that never updates holds the initial weights: those must be the grid's, not the trained ones
    never_updated = EMAWeightAveraging(decay=0.5, update_starting_at_step=10**6)
    trainer = quiet_trainer(tmp_path, limit_train_batches=2, callbacks=[never_updated, training])
    trainer.fit(decoder, train_dataloaders=loader(16, 0), val_dataloaders=loader(8, 1))
    assert not torch.equal(training.weight, initial)
    assert len(drawn_with) == 1 and torch.equal(drawn_with[0], initial)


def test_write_samples_writes_the_requested_metadata_reproducibly(tmp_path):
    decoder = tiny_decoder(seed=0)
    options = {"goal": "sell", "tone": [0.2, 0.8], "steps": 2, "guidance_scale": 2.0, "batch_size": 4}
    written = decoder.write_samples(tmp_path / "a", num=6, seed=3, device="cpu", options=options)
    arrays = np.load(written["arrays"])
    assert arrays["images"].shape == (6, 3, RESOLUTION, RESOLUTION) and arrays["images"].dtype == np.uint8
    assert arrays["goal"].tolist() == [GOALS.index("sell")] * 6
    assert arrays["format"].tolist() == [0, 1, 2, 3, 0, 1]  # the missing format cycles
    assert np.allclose(arrays["tone"], [[0.2, 0.8]] * 6)
    assert (arrays["steps"], arrays["guidance_scale"], str(arrays["sampler"])) == (2, 2.0, "ddim")
    assert written["goals"]["sell"] == 6 and written["formats"] == {
        "poster": 2,
        "square": 2,
        "banner": 1,
        "story": 1,
    }
    grid = Image.open(written["grid"])
    assert grid.size == (3 * RESOLUTION + 4 * 2, 2 * RESOLUTION + 3 * 2)  # 3 x 2 cells, 2 px padding

    again = decoder.write_samples(tmp_path / "b", num=6, seed=3, device="cpu", options=options)
    assert np.array_equal(np.load(again["arrays"])["images"], arrays["images"])


def test_write_samples_without_metadata_covers_every_goal_and_format_pair(tmp_path):
    decoder = tiny_decoder(seed=0)
    written = decoder.write_samples(tmp_path, num=20, seed=0, device="cpu", options={"steps": 1})
    arrays = np.load(written["arrays"])
    pairs = set(zip(arrays["goal"].tolist(), arrays["format"].tolist(), strict=True))
    assert len(pairs) == len(GOALS) * len(FORMAT_NAMES)
    assert arrays["tone"].min() >= 0 and arrays["tone"].max() <= 1 and arrays["tone"].std() > 0.1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"goal": "party"}, r"sample.options.goal='party' is not a goal; use one of inform, promote"),
        ({"format": 9}, r"sample.options.format=9 is not a format"),
        ({"tone": [0.5]}, r"sample.options.tone=\[0.5\]: give 2 numbers in \[0, 1\]"),
        ({"colour": "red"}, r"sample.options has unknown keys \['colour'\]"),
        ({"sampler": "euler"}, r"sample.options.sampler='euler'"),
    ],
)
def test_bad_sample_options_name_the_key(tmp_path, options, message):
    with pytest.raises(UserError, match=message):
        tiny_decoder().write_samples(tmp_path, num=2, seed=0, device="cpu", options=options)


def test_bad_model_settings_name_the_key():
    with pytest.raises(UserError, match=r"model.sampler='euler'"):
        tiny_decoder(sampler="euler")
    with pytest.raises(UserError, match=r"model.condition_dropout must be in \[0, 1\)"):
        tiny_decoder(condition_dropout=1.0)
    with pytest.raises(UserError, match=r"model.noise_scheduler.prediction_type='sample'"):
        DecoderModel(
            net=tiny_unet(),
            meta_tokens=MetaTokens(CONTEXT_DIM),
            noise_scheduler=DDPMScheduler(prediction_type="sample"),
            optimizer=torch.optim.Adam,
        )
    with pytest.raises(UserError, match=r"model.snr_gamma=0"):
        tiny_decoder(snr_gamma=0)
