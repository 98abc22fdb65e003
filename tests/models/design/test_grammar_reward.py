"""The phase 3 judge: the abstractor's grammar of the encoder's soft structure, at the encoder's resolution,
differentiable in the pixels, frozen; a missing checkpoint names its key."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from datamodules.design.layout_reading import read_grammar
from datamodules.design.render import render_design
from models.design.grammar_reward import (
    AnalyticGrammar,
    GrammarReward,
    before_after_tables,
    grammar_table,
    independent_judge,
    inside_formats,
    phase3_judges,
    with_letterbox,
)
from models.design.schema import COLOR_OUTSIDE, F_COLOR
from tests.models.design.phase3_stages import JUDGE_RESOLUTION, write_judge, write_stages
from training.toolkit.errors import UserError
from training.toolkit.stage_checkpoint import load_trained_module


@pytest.fixture(scope="module")
def stages(tmp_path_factory) -> dict[str, str]:
    return write_stages(tmp_path_factory.mktemp("phase3_stages"))


@pytest.fixture(scope="module")
def judge(stages) -> GrammarReward:
    return GrammarReward.from_checkpoints(stages["encoder_checkpoint"], stages["abstractor_checkpoint"])


def images(count: int, size: int) -> torch.Tensor:
    return torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_the_score_is_the_abstractor_reading_of_the_encoder_structure_at_its_resolution(judge, stages):
    batch = images(3, 16)
    encoder = load_trained_module(stages["encoder_checkpoint"], "encoder")
    abstractor = load_trained_module(stages["abstractor_checkpoint"], "abstractor").net
    upsampled = F.interpolate(batch, size=JUDGE_RESOLUTION, mode="bilinear", antialias=True)
    expected = abstractor(encoder.soft_structure(upsampled))["grammar"]
    assert judge.resolution == JUDGE_RESOLUTION  # the encoder run's data.resolution
    scores = judge(batch)
    assert scores.shape == (3, 4) and ((scores > 0) & (scores < 1)).all()
    torch.testing.assert_close(scores, expected, rtol=0, atol=0)


def test_the_score_is_differentiable_in_the_pixels_and_the_judges_stay_frozen(judge):
    batch = images(2, 16).requires_grad_(True)
    judge(batch).sum().backward()
    assert batch.grad is not None and batch.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in judge.parameters())
    assert not judge.training and not judge.reader.encoder.training


def test_grammar_table_means_over_designs_per_score_and_overall():
    scores = torch.tensor([[0.0, 0.2, 0.4, 0.6], [1.0, 0.4, 0.6, 0.2]])
    table = grammar_table(scores, "val/grammar")
    assert table["val/grammar/alignment"] == pytest.approx(0.5)
    assert table["val/grammar/hierarchy"] == pytest.approx(0.4)
    assert table["val/grammar/mean"] == pytest.approx(3.4 / 8)


def test_a_checkpoint_path_that_does_not_exist_names_its_key(stages, tmp_path):
    with pytest.raises(UserError, match=r"model\.abstractor_checkpoint=.*missing\.ckpt does not exist"):
        GrammarReward.from_checkpoints(stages["encoder_checkpoint"], tmp_path / "missing.ckpt")


def test_before_after_tables_name_each_judge_and_its_gain():
    before = {"judge": torch.full((2, 4), 0.5), "independent": torch.full((2, 4), 0.25)}
    after = {"judge": torch.full((2, 4), 0.75), "independent": torch.full((2, 4), 0.25)}
    table = before_after_tables(before, after)
    assert table["test/grammar/after/mean"] == 0.75 and table["test/grammar_gain"] == 0.25
    assert table["test/grammar_independent/before/balance"] == 0.25
    assert table["test/grammar_independent_gain"] == 0


def test_an_independent_judge_loads_other_runs(stages, tmp_path):
    other = write_judge(tmp_path, seed=11)
    judge = independent_judge(other, stages)
    assert isinstance(judge, GrammarReward) and not judge.training
    assert independent_judge(None, stages) is None
    assert independent_judge({"encoder_checkpoint": None, "abstractor_checkpoint": None}, stages) is None


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"encoder_checkpoint": "enc.ckpt"}, r"takes both encoder_checkpoint and abstractor_checkpoint"),
        (
            {"encoder": "enc.ckpt", "abstractor_checkpoint": "abs.ckpt"},
            r"model\.independent_judge takes both",
        ),
        ("same", r"same encoder and abstractor checkpoints as the judge in the loss"),
        (
            {"encoder_checkpoint": "nowhere.ckpt", "abstractor_checkpoint": "abs.ckpt"},
            r"model\.independent_judge\.encoder_checkpoint=nowhere\.ckpt does not exist",
        ),
    ],
)
def test_a_bad_independent_judge_names_the_key_and_the_fix(stages, given, message):
    if given == "same":
        given = {name: stages[name] for name in ("encoder_checkpoint", "abstractor_checkpoint")}
    with pytest.raises(UserError, match=message):
        independent_judge(given, stages)


def test_the_analytic_judge_scores_the_layout_the_encoder_reads_at_its_resolution(judge):
    batch = images(3, 16)
    upsampled = F.interpolate(batch, size=JUDGE_RESOLUTION, mode="bilinear", antialias=True)
    f_tensors = judge.reader.encoder.predict_f_tensor(upsampled).numpy()
    expected = torch.from_numpy(np.stack([read_grammar(f_tensor) for f_tensor in f_tensors]))
    torch.testing.assert_close(AnalyticGrammar(judge)(batch), expected, rtol=0, atol=0)


def test_phase3_judges_are_the_loss_judge_the_independent_one_when_set_and_the_analytic(stages, tmp_path):
    assert list(phase3_judges(stages)) == ["judge", "analytic"]
    judges = phase3_judges(stages | {"independent_judge": write_judge(tmp_path, seed=11)})
    assert list(judges) == ["judge", "independent", "analytic"]
    assert judges["analytic"].encoder is judges["judge"].reader.encoder
    assert not any(p.requires_grad for judge in judges.values() for p in judge.parameters())


@pytest.mark.parametrize("resolution", [32, 64])
def test_inside_formats_is_where_the_renderer_draws_each_format(resolution):
    inside = inside_formats(resolution)
    for index in range(40):
        design = render_design(index, resolution, split="test")
        drawn = torch.from_numpy(design.structure[F_COLOR] != COLOR_OUTSIDE)
        assert torch.equal(inside[design.meta.format_index], drawn), design.meta.format


def test_with_letterbox_paints_the_outside_grey_and_passes_the_page_through():
    batch = images(4, 32).requires_grad_(True)
    formats = torch.tensor([0, 1, 2, 3])
    painted = with_letterbox(batch, formats)
    inside = inside_formats(32)[formats].unsqueeze(1).expand_as(batch)
    grey = torch.tensor(128.0).div(127.5).sub(1.0)  # OUTSIDE_RGB in the models' [-1, 1], float32
    assert torch.equal(painted[inside], batch[inside])
    assert (painted[~inside] == grey).all() and (~inside).any()
    painted.sum().backward()
    assert torch.equal(batch.grad, inside.float())  # no gradient reaches the letterbox
