"""Goal and format as a classifier's classes, and a classifier's logits read back as goal and format."""

from __future__ import annotations

import pytest
import torch

from models.design.metadata_classes import LABELS, class_names, field_logits, label_of
from models.design.schema import FORMAT_NAMES, GOALS
from training.toolkit.errors import UserError

GOAL = torch.arange(len(GOALS)).repeat_interleave(len(FORMAT_NAMES))
FORMAT = torch.arange(len(FORMAT_NAMES)).repeat(len(GOALS))


@pytest.mark.parametrize("label", LABELS)
def test_every_design_gets_the_class_that_names_it(label):
    names = class_names(label)
    for goal, format, index in zip(GOAL, FORMAT, label_of(GOAL, FORMAT, label), strict=True):
        assert set(names[index].split("/")) <= {GOALS[goal], FORMAT_NAMES[format]}
        assert GOALS[goal] in names[index] or FORMAT_NAMES[format] in names[index]
    assert len(set(label_of(GOAL, FORMAT, label).tolist())) == len(names)


def test_the_joint_logits_are_read_as_each_fields_marginal():
    logits = torch.randn(7, 20, generator=torch.Generator().manual_seed(0))
    probabilities = logits.softmax(dim=1).view(7, len(GOALS), len(FORMAT_NAMES))
    read = field_logits(logits, "goal_format")
    assert torch.allclose(read["goal"].softmax(dim=1), probabilities.sum(dim=2), atol=1e-6)
    assert torch.allclose(read["format"].softmax(dim=1), probabilities.sum(dim=1), atol=1e-6)
    # a classifier sure of one joint class reads that class's goal and format
    sure = torch.full((1, 20), -30.0).index_fill(1, torch.tensor([13]), 30.0)
    read = field_logits(sure, "goal_format")
    assert (read["goal"].argmax().item(), read["format"].argmax().item()) == (13 // 4, 13 % 4)
    single = field_logits(logits[:, :5], "goal")
    assert list(single) == ["goal"] and torch.equal(single["goal"], logits[:, :5])


def test_an_unknown_label_names_the_choices():
    with pytest.raises(UserError, match=r"data\.label='tone'.*goal, format, goal_format"):
        class_names("tone")
