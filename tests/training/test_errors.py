"""User mistakes give one clear message naming the key/file and the fix (exit status != 0, no traceback)."""

import torch

from tests.helpers import run_main


def _fails(root, *overrides):
    result = run_main(root, *overrides, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output[-3000:]
    return output


def test_unknown_experiment_lists_the_valid_ones(tmp_path):
    output = _fails(tmp_path, "experiment=cifar10_resnet21")
    assert "cifar10_resnet20" in output and "cnn_digits" in output


def test_unknown_key_is_named(tmp_path):
    output = _fails(tmp_path, "trainer.max_epoch=3")
    assert "max_epoch" in output and "+trainer.max_epoch" in output


def test_bad_value_type_is_named(tmp_path):
    output = _fails(tmp_path, "trainer.max_epochs=many")
    assert "trainer.max_epochs" in output


def test_missing_dataset_offline_says_where_to_put_it(tmp_path):
    output = _fails(tmp_path, "experiment=cifar10_resnet20", "debug=fdr")
    assert str(tmp_path / "data") in output and "data.download=true" in output


def test_missing_checkpoint_path(tmp_path):
    output = _fails(tmp_path, "task=test", f"ckpt_path={tmp_path}/nope.ckpt")
    assert "nope.ckpt does not exist" in output


def test_a_file_that_is_not_a_checkpoint(tmp_path):
    bogus = tmp_path / "notes.ckpt"
    bogus.write_text("not a checkpoint")
    output = _fails(tmp_path, "task=test", f"ckpt_path={bogus}")
    assert "not a readable PyTorch checkpoint" in output


def test_a_foreign_checkpoint_points_to_migration(tmp_path):
    foreign = tmp_path / "old.pt"
    torch.save({"epoch": 3, "model_state_dict": {}, "optimizer_state_dict": {}, "loss": 0.1}, foreign)
    output = _fails(tmp_path, "task=test", f"ckpt_path={foreign}")
    assert "python -m training.migrate" in output


def test_existing_run_is_not_overwritten_without_resume(tmp_path):
    tiny = [
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "test_after_fit=false",
        "model.lr_schedule=null",
        "run_name=taken",
    ]
    run_main(tmp_path, *tiny)
    output = _fails(tmp_path, *tiny)
    assert "resume=auto" in output
