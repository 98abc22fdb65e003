"""The fine-tune loop: loss = diffusion − λ·reward on x̂0, the reward's gradient reaching the decoder, frozen
judges outside the checkpoint, the starting decoder's weights on a fresh fit and the run's own on resume."""

from __future__ import annotations

import hydra
import pytest
import torch
from hydra.errors import InstantiationException
from pytorch_lightning.callbacks import EMAWeightAveraging

from models.design.decoder.module import DecoderModel
from models.design.finetune.module import FinetuneModel
from models.design.grammar_reward import GrammarReward, with_letterbox
from models.design.judged_designs import fixed_designs, judged_samples
from models.design.sampling import predict_x0
from tests.helpers import quiet_trainer
from tests.models.design.phase3_stages import DECODER_CONFIG, ToyDesignData, write_judge, write_stages
from tests.models.design.tiny_decoder import RESOLUTION, toy_designs
from training.toolkit.errors import UserError

WEIGHT = 0.5


@pytest.fixture(scope="module")
def stages(tmp_path_factory) -> dict[str, str]:
    return write_stages(tmp_path_factory.mktemp("phase3_stages"))


def finetune_config(stages: dict[str, str], **options) -> dict:
    """The fine-tune's model config as the pipeline composes it: the decoder's plus the phase 3 keys."""
    return {
        **DECODER_CONFIG,
        "_target_": "models.design.finetune.module.FinetuneModel",
        **stages,
        "grammar_weight": WEIGHT,
        "reward": "x0",  # the cheaper reward; the sample reward's tests ask for it
        "eval_designs": 4,
        **options,
    }


def set_up(stages: dict[str, str], tmp_path, **options) -> FinetuneModel:
    """A fine-tune attached to a trainer and set up for fitting (judges loaded, decoder weights copied)."""
    module = hydra.utils.instantiate(finetune_config(stages, **options))
    module.trainer = quiet_trainer(tmp_path)
    module.setup("fit")
    return module


@pytest.fixture(scope="module")
def module(stages, tmp_path_factory) -> FinetuneModel:
    return set_up(stages, tmp_path_factory.mktemp("finetune"))


@pytest.fixture(scope="module")
def batch() -> dict[str, torch.Tensor]:
    return toy_designs(10, seed=4)


def test_a_fresh_fit_starts_from_the_decoder_checkpoint(module):
    for name, value in module.start.state_dict().items():
        assert torch.equal(module.state_dict()[name], value), name


def test_the_judges_and_the_starting_decoder_stay_out_of_the_checkpoint(module):
    assert set(module.state_dict()) == set(module.start.state_dict())
    frozen = {id(p) for stage in module.frozen.values() for p in stage.parameters()}
    assert frozen and not frozen & {id(p) for p in module.parameters()}


def test_rewarded_samples_come_first_with_timesteps_below_the_limit(module):
    torch.manual_seed(0)
    timesteps = module.stratified_timesteps(10, torch.device("cpu"))
    assert module.reward_count(10) == 4  # round(10 * 400 / 1000)
    assert (timesteps[:4] < 400).all() and (timesteps[4:] >= 400).all() and timesteps.max() < 1000


def test_the_loss_is_the_diffusion_loss_minus_weight_times_the_alpha_bar_weighted_grammar(module, batch):
    torch.manual_seed(1)
    loss, diffusion, reward = module.finetune_loss(batch)
    torch.manual_seed(1)  # the same timesteps and noise, by hand
    timesteps = module.stratified_timesteps(10, torch.device("cpu"))
    terms = module.diffusion_loss(
        batch["image"], batch["goal"], batch["format"], batch["tone"], timesteps=timesteps
    )
    clean = predict_x0(module.noise_scheduler, terms.noisy, timesteps, terms.output)[:4].clamp(-1, 1)
    alpha_bar = module.noise_scheduler.alphas_cumprod[timesteps[:4]]
    judged = module.judge(with_letterbox(clean, batch["format"][:4]))  # model.reward_letterbox: true
    expected_reward = (alpha_bar * judged.sum(dim=1)).sum() / 10
    torch.testing.assert_close(diffusion, terms.loss, rtol=0, atol=0)
    torch.testing.assert_close(reward, expected_reward, rtol=1e-6, atol=0)
    torch.testing.assert_close(loss, terms.loss - WEIGHT * expected_reward, rtol=1e-6, atol=0)
    assert 0 < reward < 4 * 4 / 10  # at most 4 rewarded designs of 10, each at most ᾱ·4


def test_the_reward_gradient_reaches_the_decoder_weights_and_not_the_judges(module, batch):
    torch.manual_seed(2)
    terms = module.diffusion_loss(
        batch["image"],
        batch["goal"],
        batch["format"],
        batch["tone"],
        timesteps=module.stratified_timesteps(10, "cpu"),
    )
    module.zero_grad()
    module.grammar_reward(terms, batch["format"]).backward()
    gradients = [p.grad for p in module.net.parameters() if p.grad is not None]
    assert gradients and sum(g.abs().sum() for g in gradients) > 0
    assert all(p.grad is None for stage in module.frozen.values() for p in stage.parameters())
    module.zero_grad()


def test_without_the_letterbox_the_x0_reward_judges_the_raw_estimates(stages, tmp_path, batch):
    module = set_up(stages, tmp_path, reward_letterbox=False)
    torch.manual_seed(1)
    _, _, reward = module.finetune_loss(batch)
    torch.manual_seed(1)
    timesteps = module.stratified_timesteps(10, torch.device("cpu"))
    terms = module.diffusion_loss(
        batch["image"], batch["goal"], batch["format"], batch["tone"], timesteps=timesteps
    )
    clean = predict_x0(module.noise_scheduler, terms.noisy, timesteps, terms.output)[:4].clamp(-1, 1)
    alpha_bar = module.noise_scheduler.alphas_cumprod[timesteps[:4]]
    raw = (alpha_bar * module.judge(clean).sum(dim=1)).sum() / 10
    torch.testing.assert_close(reward, raw, rtol=1e-6, atol=0)
    letterboxed = (alpha_bar * module.judge(with_letterbox(clean, batch["format"][:4])).sum(dim=1)).sum() / 10
    assert reward != letterboxed


def test_without_rewarded_timesteps_the_loss_is_the_diffusion_loss(stages, tmp_path, batch):
    module = set_up(stages, tmp_path, reward_max_timestep=0)
    loss, diffusion, reward = module.finetune_loss(batch)
    assert reward == 0 and torch.equal(loss, diffusion)


@pytest.mark.parametrize("letterbox", [False, True])
def test_the_sample_reward_is_the_judged_grammar_of_ddim_samples_of_the_batch_metadata(
    stages, tmp_path, batch, letterbox
):
    module = set_up(
        stages,
        tmp_path,
        reward="samples",
        reward_samples=3,
        reward_steps=4,
        reward_grad_steps=2,
        reward_letterbox=letterbox,
    )
    torch.manual_seed(5)
    loss, diffusion, reward = module.finetune_loss(batch)
    torch.manual_seed(5)  # the same uniform timesteps, noise and initial latents, by hand
    terms = module.diffusion_loss(batch["image"], batch["goal"], batch["format"], batch["tone"])
    with torch.no_grad():
        samples = module.sample(batch["goal"][:3], batch["format"][:3], batch["tone"][:3], 4, sampler="ddim")
    judged = with_letterbox(samples, batch["format"][:3]) if letterbox else samples
    expected_reward = module.judge(judged).sum(dim=1).mean()
    torch.testing.assert_close(diffusion, terms.loss, rtol=0, atol=0)
    torch.testing.assert_close(reward, expected_reward, rtol=1e-6, atol=0)
    torch.testing.assert_close(loss, terms.loss - WEIGHT * expected_reward, rtol=1e-6, atol=0)
    module.zero_grad()
    reward.backward()  # through the last two DDIM steps into the decoder, not the judges
    gradients = [p.grad for p in module.net.parameters() if p.grad is not None]
    assert gradients and sum(g.abs().sum() for g in gradients) > 0
    assert all(p.grad is None for stage in module.frozen.values() for p in stage.parameters())
    module.zero_grad()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"reward": "pixels"}, "model.reward='pixels' must be one of x0, samples"),
        ({"reward_samples": 0}, "model.reward_samples=0"),
        ({"reward_steps": 2, "reward_grad_steps": 3}, "model.reward_grad_steps=3"),
        ({"reward_grad_steps": 0}, "at least one and at most reward_steps"),
    ],
)
def test_a_bad_sample_reward_setting_names_its_key(stages, options, message):
    with pytest.raises(InstantiationException) as error:
        hydra.utils.instantiate(finetune_config(stages, **options))
    assert message in str(error.value.__cause__)


def test_resume_continues_from_the_run_checkpoint_not_the_decoder(stages, tmp_path):
    data = ToyDesignData(num_train=8, batch_size=4)
    first = hydra.utils.instantiate(finetune_config(stages))
    trainer = quiet_trainer(tmp_path, max_steps=2, limit_val_batches=0)
    trainer.fit(first, datamodule=data)
    trainer.save_checkpoint(tmp_path / "step2.ckpt")
    start = first.start.state_dict()
    assert any(
        not torch.equal(value, start[name]) for name, value in first.state_dict().items()
    )  # it trained

    resumed = hydra.utils.instantiate(finetune_config(stages))
    quiet_trainer(tmp_path, max_steps=2, limit_val_batches=0).fit(
        resumed, datamodule=data, ckpt_path=tmp_path / "step2.ckpt", weights_only=True
    )
    for name, value in first.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], value), name


def test_weight_averaging_is_refused_with_the_callback_named(stages, tmp_path):
    module = hydra.utils.instantiate(finetune_config(stages))
    module.trainer = quiet_trainer(tmp_path, callbacks=[EMAWeightAveraging()])
    with pytest.raises(UserError, match="callbacks: the fine-tune does not support EMA"):
        module.setup("fit")


def test_another_decoder_architecture_is_a_user_error(stages, tmp_path):
    wider = {**DECODER_CONFIG["net"], "channels": 16}
    with pytest.raises(UserError, match=r"model\.decoder_checkpoint=.* another architecture"):
        set_up(stages, tmp_path, net=wider)


def test_another_prediction_type_than_the_decoders_is_a_user_error(stages, tmp_path):
    v_prediction = {**DECODER_CONFIG["noise_scheduler"], "prediction_type": "v_prediction"}
    with pytest.raises(UserError, match=r"noise schedule and prediction type \(epsilon\)"):
        set_up(stages, tmp_path, noise_scheduler=v_prediction)


def test_missing_checkpoints_name_every_key_and_the_pipeline(stages):
    config = finetune_config({"encoder_checkpoint": stages["encoder_checkpoint"]})
    with pytest.raises(InstantiationException) as error:  # what training.run reports, message included
        hydra.utils.instantiate(config)
    assert isinstance(error.value.__cause__, UserError)
    message = str(error.value.__cause__)
    assert "model.decoder_checkpoint, model.abstractor_checkpoint are not set" in message
    assert "experiments/design_pipeline.py" in message


def test_a_reward_limit_beyond_t_names_the_key(stages):
    with pytest.raises(InstantiationException) as error:
        hydra.utils.instantiate(finetune_config(stages, reward_max_timestep=1001))
    assert "model.reward_max_timestep=1001 must lie in [0, T = 1000]" in str(error.value.__cause__)


def test_validation_judges_the_fixed_designs_samples(module, tmp_path):
    metrics = quiet_trainer(tmp_path).validate(module, datamodule=ToyDesignData(num_test=4))[0]
    expected = judged_samples(module, {"judge": module.judge}, module.designs["val"])[1]["judge"]
    assert metrics["val/grammar/mean"] == pytest.approx(expected.mean().item(), rel=1e-5)
    assert metrics["val/grammar/balance"] == pytest.approx(expected[:, 2].mean().item(), rel=1e-5)
    assert len(module.designs["val"]) == 4 and module.designs["val"].request.goal.tolist() == [0, 1, 2, 3]
    gaps = [key for key in metrics if key.startswith("val/x0_grammar_gap/")]
    assert len(gaps) == 4  # a first batch of 4 designs at t = 125, 375, 625, 875: one band stays empty


def test_the_test_designs_are_not_the_ones_validation_picks_the_checkpoint_on(module):
    val, test = module.designs["val"], module.designs["test"]
    assert torch.equal(test.latents, fixed_designs(4, 3, RESOLUTION, 0, "k").latents)  # eval_seed's
    assert not torch.equal(val.latents, test.latents) and not torch.equal(val.request.tone, test.request.tone)


def test_the_x0_gap_reads_each_fifth_of_the_timesteps(module, batch):
    gaps = module.x0_grammar_gap(batch)  # 10 designs at t = 50, 150, ..., 950: two per band
    assert list(gaps) == [f"val/x0_grammar_gap/t{lo}-{lo + 199}" for lo in range(0, 1000, 200)]
    noise = torch.randn(batch["image"].shape, generator=torch.Generator().manual_seed(0))
    timesteps = torch.tensor([50, 150])
    images = batch["image"][:2]
    noisy = module.noise_scheduler.add_noise(images, noise[:2], timesteps)
    eps = module(
        noisy, timesteps, module.meta_tokens(batch["goal"][:2], batch["format"][:2], batch["tone"][:2])
    )
    clean = predict_x0(module.noise_scheduler, noisy, timesteps, eps).clamp(-1, 1)
    expected = (module.judge(clean) - module.judge(images)).abs().mean()
    assert gaps["val/x0_grammar_gap/t0-199"].item() == pytest.approx(expected.item(), rel=1e-4)


def test_test_compares_the_starting_and_fine_tuned_samples_on_the_same_designs(stages, tmp_path):
    quality = {
        "_target_": "models.design.decoder.quality.DecoderQuality",
        "_partial_": True,
        "encoder_checkpoint": stages["encoder_checkpoint"],
        "abstractor_checkpoint": stages["abstractor_checkpoint"],
        "feature": "design",  # the judge's features (Inception: tests/models/common/test_inception_fid.py)
        "num_samples": 4,
        "subset_size": 2,
        "subsets": 2,
    }
    module = set_up(stages, tmp_path, quality=quality)  # weights = the starting decoder's
    metrics = quiet_trainer(tmp_path).test(module, datamodule=ToyDesignData(num_test=4))[0]
    assert metrics["test/grammar/after/mean"] == metrics["test/grammar/before/mean"]
    assert metrics["test/grammar_gain"] == 0
    assert metrics["test/fid/after"] == metrics["test/fid/before"] and metrics["test/fid_ratio"] == 1
    assert {
        "test/fid/real_vs_real",
        "test/fid/noise",
        "test/conditioning/goal/after",
        "test/kid/before",
    } <= set(metrics)
    data = ToyDesignData(num_test=4)
    real_batch = data.on_after_batch_transfer(next(iter(data.test_dataloader())), 0)
    real = module.judge(real_batch["image"])
    assert metrics["test/grammar/real/mean"] == pytest.approx(real.mean().item(), rel=1e-5)
    error = (real - real_batch["grammar"]).abs()
    assert metrics["test/grammar_error/real/balance"] == pytest.approx(error[:, 2].mean().item(), rel=1e-5)
    # the renderer's analytic scores of the layout the encoder reads, beside the learned judge
    analytic = judged_samples(module, {"analytic": module.frozen["analytic"]}, module.designs["test"])[1]
    assert metrics["test/grammar_analytic/after/mean"] == pytest.approx(
        analytic["analytic"].mean().item(), abs=1e-6
    )
    assert metrics["test/grammar_analytic_gain"] == 0
    assert "test/grammar_analytic/real/mean" in metrics
    assert isinstance(module, DecoderModel)
    assert module.summary_facts() == {"fid_features": module.judge.reader.identity}  # the renamed table's too


def test_an_independent_judge_reports_beside_the_loss_judge(stages, tmp_path):
    other = write_judge(tmp_path, seed=11)
    module = set_up(stages, tmp_path, independent_judge=other)  # weights = the starting decoder's
    metrics = quiet_trainer(tmp_path).test(module, datamodule=ToyDesignData(num_test=4))[0]

    independent = GrammarReward.from_checkpoints(other["encoder_checkpoint"], other["abstractor_checkpoint"])
    samples = judged_samples(module, {"independent": independent}, module.designs["test"])[1]["independent"]
    data = ToyDesignData(num_test=4)
    real = independent(data.on_after_batch_transfer(next(iter(data.test_dataloader())), 0)["image"])
    assert metrics["test/grammar_independent/before/mean"] == pytest.approx(samples.mean().item(), rel=1e-5)
    assert metrics["test/grammar_independent/after/hierarchy"] == pytest.approx(
        samples[:, 3].mean().item(), rel=1e-5
    )
    assert metrics["test/grammar_independent_gain"] == 0
    assert metrics["test/grammar_independent/real/mean"] == pytest.approx(real.mean().item(), rel=1e-5)
    assert metrics["test/grammar/before/mean"] != metrics["test/grammar_independent/before/mean"]
    assert "independent" not in str(list(module.state_dict()))
