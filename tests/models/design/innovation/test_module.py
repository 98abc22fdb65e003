"""The innovation loop: the latents are the only parameters, gradient ascent raises the judged grammar while
the latents stay on the Gaussian shell, and testing compares the initial and optimised latents' samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from models.design.grammar_reward import GrammarReward, with_letterbox
from models.design.innovation.module import InnovationModel, shell_penalty
from models.design.judged_designs import judged_samples
from tests.helpers import quiet_trainer
from tests.models.design.phase3_stages import ToyDesignData, write_judge, write_stages
from tests.models.design.tiny_decoder import RESOLUTION
from training.toolkit.errors import UserError

STEPS = 4


@pytest.fixture(scope="module")
def stages(tmp_path_factory) -> dict[str, str]:
    return write_stages(tmp_path_factory.mktemp("phase3_stages"))


TINY = {
    "num_latents": 4,
    "resolution": RESOLUTION,
    "sample_steps": 2,
    "kid_subset_size": 2,
    "kid_subsets": 2,
    "feature": "design",  # the judge's features (Inception: tests/models/common/test_inception_fid.py)
}


def innovation(stages: dict[str, str], lr: float = 0.02, **options) -> InnovationModel:
    """A 4-latent innovation loop over the tiny stages (Adam at `lr`)."""
    return InnovationModel(
        optimizer=lambda params: torch.optim.Adam(params, lr=lr), **stages, **(TINY | options)
    )


def optimised(stages: dict[str, str], root, steps: int, **options) -> InnovationModel:
    module = innovation(stages, **options)
    quiet_trainer(root, max_steps=steps).fit(module, train_dataloaders=DataLoader(range(steps)))
    return module


@pytest.fixture(scope="module")
def trained(stages, tmp_path_factory) -> InnovationModel:
    return optimised(stages, tmp_path_factory.mktemp("innovation"), STEPS)


def mean_grammar(module: InnovationModel, latents: torch.Tensor) -> float:
    return (
        judged_samples(
            module.decoder, {"j": module.judge}, module.designs, latents, module.hparams.sample_steps
        )[1]["j"]
        .mean()
        .item()
    )


def test_the_latents_are_the_only_weights(trained):
    assert set(trained.state_dict()) == {"latents"}
    assert [p for p in trained.parameters()] == [trained.latents]
    assert trained.latents.shape == (4, 3, RESOLUTION, RESOLUTION)


def test_gradient_ascent_raises_the_judged_grammar_and_keeps_the_latents_on_the_shell(trained):
    before = mean_grammar(trained, trained.designs.latents)
    after = mean_grammar(trained, trained.latents.detach())
    assert after > before
    assert not torch.equal(trained.latents.detach(), trained.designs.latents)
    rms = trained.latents.detach().flatten(1).pow(2).mean(dim=1).sqrt()
    assert ((rms - 1).abs() < 0.1).all()
    assert all(p.grad is None for stage in trained.frozen.values() for p in stage.parameters())


def test_the_loss_is_minus_the_mean_grammar_plus_the_weighted_shell_penalty(trained):
    loss, grammar, penalty = trained.objective()
    assert grammar.shape == (4, 4)
    assert penalty == shell_penalty(trained.latents)
    torch.testing.assert_close(loss, -grammar.mean() + 10.0 * penalty, rtol=0, atol=0)
    request = trained.designs.request
    with torch.no_grad():  # the judge reads the samples with their letterbox painted in (reward_letterbox)
        samples = trained.decoder.sample(
            request.goal,
            request.format,
            request.tone,
            trained.hparams.sample_steps,
            latents=trained.latents.detach(),
            sampler="ddim",
        )
    torch.testing.assert_close(grammar.detach(), trained.judge(with_letterbox(samples, request.format)))
    trained.zero_grad()
    loss.backward()
    assert trained.latents.grad.abs().sum() > 0
    trained.zero_grad()


def test_the_shell_penalty_is_zero_on_the_shell_and_grows_quadratically_off_it():
    on_shell = torch.ones(2, 3, 4, 4)
    assert shell_penalty(on_shell) == 0
    assert shell_penalty(2 * on_shell) == pytest.approx(9.0)  # (4 - 1)^2
    assert shell_penalty(torch.stack([on_shell[0], 0 * on_shell[0]])) == pytest.approx(0.5)


def test_the_same_seed_gives_the_same_designs_and_initial_latents(stages):
    first, second, other = innovation(stages), innovation(stages), innovation(stages, seed=1)
    assert torch.equal(first.latents, second.latents) and not torch.equal(first.latents, other.latents)
    assert first.designs.request.goal.tolist() == [0, 1, 2, 3]  # goals cycle first, then formats


def test_test_reports_before_after_grammar_quality_and_writes_the_samples(trained, tmp_path):
    trainer = quiet_trainer(tmp_path)
    metrics = trainer.test(trained, datamodule=ToyDesignData(num_train=4, num_test=4))[0]
    before = mean_grammar(trained, trained.designs.latents)
    after = mean_grammar(trained, trained.latents.detach())
    assert metrics["test/grammar/before/mean"] == pytest.approx(before, rel=1e-5)
    assert metrics["test/grammar/after/mean"] == pytest.approx(after, rel=1e-5)
    # a difference of two float32 means near 0.5: rounding bounds its error absolutely, not relative to a tiny gain
    assert metrics["test/grammar_gain"] == pytest.approx(after - before, abs=1e-6)
    assert metrics["test/fid_ratio"] == pytest.approx(metrics["test/fid/after"] / metrics["test/fid/before"])
    assert {"test/fid/real_vs_real", "test/fid/noise", "test/kid/after", "test/grammar/real/mean"} <= set(
        metrics
    )
    assert trained.summary_facts() == {"fid_features": trained.judge.reader.identity}  # for summary.json
    assert {"test/grammar_analytic/after/mean", "test/grammar_analytic_gain"} <= set(metrics)
    saved = np.load(tmp_path / "innovation" / "after" / "samples.npz")
    assert saved["images"].shape == (4, 3, RESOLUTION, RESOLUTION) and saved["grammar"].shape == (4, 4)
    assert saved["grammar_analytic"].shape == (4, 4)
    np.testing.assert_allclose(saved["latents"], trained.latents.detach().numpy())
    assert (tmp_path / "images" / "innovation_before_after.png").is_file()


def test_an_independent_judge_scores_the_same_samples_and_saves_its_grammar(trained, stages, tmp_path):
    other = write_judge(tmp_path, seed=11)
    module = innovation(stages, independent_judge=other)
    module.latents.data.copy_(trained.latents.detach())
    metrics = quiet_trainer(tmp_path).test(module, datamodule=ToyDesignData(num_train=4, num_test=4))[0]

    independent = GrammarReward.from_checkpoints(other["encoder_checkpoint"], other["abstractor_checkpoint"])
    steps = module.hparams.sample_steps
    judges = {"independent": independent}
    before = judged_samples(module.decoder, judges, module.designs, None, steps)[1]["independent"]
    after = judged_samples(module.decoder, judges, module.designs, module.latents.detach(), steps)[1][
        "independent"
    ]
    assert metrics["test/grammar_independent/before/mean"] == pytest.approx(before.mean().item(), rel=1e-5)
    assert metrics["test/grammar_independent/after/mean"] == pytest.approx(after.mean().item(), rel=1e-5)
    assert metrics["test/grammar_independent_gain"] == pytest.approx(
        (after.mean() - before.mean()).item(), abs=1e-6
    )
    assert metrics["test/grammar/after/mean"] == pytest.approx(
        mean_grammar(trained, trained.latents.detach()), rel=1e-5
    )
    saved = np.load(tmp_path / "innovation" / "after" / "samples.npz")
    np.testing.assert_allclose(saved["grammar_independent"], after.numpy(), rtol=1e-5)


def test_a_decoder_of_another_resolution_is_a_user_error(stages, tmp_path):
    module = innovation(stages, resolution=2 * RESOLUTION)
    with pytest.raises(UserError, match=r"data\.resolution=16"):
        module.setup("fit")


def test_missing_checkpoints_name_the_keys_and_the_pipeline(stages):
    with pytest.raises(
        UserError, match=r"model\.decoder_checkpoint is not set.*experiments/design_pipeline\.py"
    ):
        innovation({**stages, "decoder_checkpoint": None})
