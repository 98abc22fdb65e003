"""Checkpoint files: written durably with a size + SHA-256 sidecar, judged by it without unpickling, and
removed together with it."""

import json
import warnings

import pytest
import torch

from training.toolkit import checkpoints
from training.toolkit.checkpoints import (
    META_KEY,
    atomic_torch_save,
    is_valid_checkpoint,
    newest_valid_checkpoint,
    remove_checkpoint_file,
    sidecar_path,
)


def _save(path, value: float) -> None:
    atomic_torch_save({"state_dict": {"w": torch.full((64,), value)}, META_KEY: {"schema_version": 2}}, path)


def test_the_sidecar_decides_validity_without_unpickling(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    _save(path, 1.0)
    record = json.loads(sidecar_path(path).read_text())
    assert record["size"] == path.stat().st_size and len(record["sha256"]) == 64

    def no_unpickling(*args, **kwargs):
        raise AssertionError("a file with a sidecar was unpickled to judge it")

    monkeypatch.setattr(checkpoints, "safe_torch_load", no_unpickling)
    assert is_valid_checkpoint(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one flipped byte
    path.write_bytes(bytes(data))
    assert not is_valid_checkpoint(path)
    path.write_bytes(bytes(data[: len(data) // 3]))  # truncated
    assert not is_valid_checkpoint(path)


def test_resume_falls_back_past_a_damaged_file_and_files_without_a_sidecar_still_load(tmp_path):
    older, newer = tmp_path / "step1.ckpt", tmp_path / "step2.ckpt"
    _save(older, 1.0)
    _save(newer, 2.0)
    newer.write_bytes(newer.read_bytes()[:100])
    with pytest.warns(UserWarning, match="Skipping unreadable"):
        assert newest_valid_checkpoint(tmp_path) == older
    sidecar_path(older).unlink()  # written before sidecars existed: judged by loading it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert newest_valid_checkpoint(tmp_path) == older


def test_removing_a_checkpoint_removes_its_sidecar(tmp_path):
    path = tmp_path / "step1.ckpt"
    _save(path, 1.0)
    remove_checkpoint_file(path)
    assert list(tmp_path.iterdir()) == []


def test_a_stored_config_naming_a_moved_module_reads_under_its_current_path(tmp_path):
    """Checkpoints written before `training.schedulers` moved into `training.toolkit` still rebuild."""
    path = tmp_path / "old.ckpt"
    old = {
        "scheduler": {"_target_": "training.schedulers.LinearWarmupCosineAnnealingLR", "_partial_": True},
        "optimizer": {"_target_": "torch.optim.AdamW"},
        "gone": [{"_target_": "training.never_existed.Thing"}],
    }
    atomic_torch_save({"state_dict": {}, META_KEY: {"schema_version": 2, "config": old}}, path)
    config = checkpoints.stored_config(path, str(path))
    assert config["scheduler"]["_target_"] == "training.toolkit.schedulers.LinearWarmupCosineAnnealingLR"
    assert config["optimizer"]["_target_"] == "torch.optim.AdamW"  # exists: untouched
    assert config["gone"][0]["_target_"] == "training.never_existed.Thing"  # unknown: left for the error
    from hydra.utils import get_class

    get_class(config["scheduler"]["_target_"])  # the rewritten path imports


def test_renamed_attributes_follow_their_package_s_moved_table(monkeypatch):
    import training
    from training.toolkit.moved_modules import upgrade_target

    monkeypatch.setitem(
        training.MOVED, "training.toolkit.optim.OldName", "training.toolkit.optim.configure_optimization"
    )
    assert upgrade_target("training.toolkit.optim.OldName") == "training.toolkit.optim.configure_optimization"
    assert (
        upgrade_target("training.toolkit.optim.configure_optimization")
        == "training.toolkit.optim.configure_optimization"
    )
