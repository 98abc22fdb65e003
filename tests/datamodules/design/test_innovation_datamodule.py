"""InnovationDM: step indices to train on, the real designs as the FID reference in every stage."""

from __future__ import annotations

import pytest
import torch

from datamodules.design import DesignDM
from datamodules.design.innovation_datamodule import InnovationDM
from training.toolkit.errors import UserError

DESIGNS = dict(resolution=32, num_train=6, num_val=0, num_test=4, batch_size=4, storage="on_the_fly", seed=3)


def test_training_batches_are_the_step_indices_and_pass_the_transfer_hook_untouched() -> None:
    datamodule = InnovationDM(steps_per_epoch=3, **DESIGNS)
    datamodule.setup("fit")
    steps = list(datamodule.train_dataloader())
    assert [step.tolist() for step in steps] == [[0], [1], [2]]
    assert datamodule.on_after_batch_transfer(steps[0], 0) is steps[0]
    assert datamodule.val_dataloader() == []


def test_the_reference_is_the_real_training_split_even_when_only_testing() -> None:
    datamodule = InnovationDM(steps_per_epoch=3, **DESIGNS)
    datamodule.setup("test")
    reference = next(iter(datamodule.reference_dataloader()))
    plain = DesignDM(**DESIGNS)
    plain.setup("fit")
    assert torch.equal(reference["image"], next(iter(plain.train_dataloader()))["image"])
    assert reference["image"].dtype == torch.uint8
    converted = datamodule.on_after_batch_transfer(reference, 0)
    assert converted["image"].dtype == torch.float32 and converted["image"].min() >= -1


def test_a_step_count_below_one_names_the_key() -> None:
    with pytest.raises(UserError, match=r"data\.steps_per_epoch=0"):
        InnovationDM(steps_per_epoch=0, **DESIGNS)
