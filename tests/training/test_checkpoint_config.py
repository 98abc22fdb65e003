"""A task on a checkpoint composes the checkpoint's own experiment unless the command names one."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.checkpoint_config import with_checkpoint_experiment
from training.toolkit.checkpoints import atomic_torch_save


def checkpoint(folder: Path, name: str) -> Path:
    path = folder / f"{name}.ckpt"
    atomic_torch_save({"state_dict": {}, "visioncore": {"schema_version": 2, "config": {"name": name}}}, path)
    return path


def test_a_test_of_a_decoder_checkpoint_composes_the_decoder_experiment(tmp_path):
    path = checkpoint(tmp_path, "design_decoder")
    argv = ["task=test", f"ckpt_path={path}", "model.quality.num_samples=16"]
    assert with_checkpoint_experiment(argv) == [*argv, "experiment=design_decoder"]


@pytest.mark.parametrize(
    "argv",
    [
        ["ckpt_path={path}"],  # fit (from a checkpoint's weights): the command's experiment decides
        ["task=test", "ckpt_path={path}", "experiment=design_encoder"],  # named: kept
        ["task=test", "ckpt_path={path},{path}", "--multirun"],  # a sweep over checkpoints: each its own
        ["task=test", "ckpt_path={missing}"],  # the task reports the missing file
    ],
)
def test_otherwise_the_arguments_are_left_as_given(tmp_path, argv):
    values = {"path": checkpoint(tmp_path, "design_decoder"), "missing": tmp_path / "nope.ckpt"}
    argv = [arg.format(**values) for arg in argv]
    assert with_checkpoint_experiment(argv) == argv


def test_a_run_of_an_experiment_conf_does_not_have_is_left_to_the_default(tmp_path):
    argv = ["task=test", f"ckpt_path={checkpoint(tmp_path, 'my_plugin_experiment')}"]
    assert with_checkpoint_experiment(argv) == argv
