"""Opening a checkpoint never runs code from it: every door refuses a file whose pickle would act, the
opt-in opens it, vanished predecessor code reads as inert placeholders, and our own files are plain."""

from __future__ import annotations

import sys
import types
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from callbacks.resume_state import ResumeState
from models.common.classifier_features import ClassifierFeatures
from models.design.encoder.reading import trained_resolution
from models.v1.transfer import pretrained_weights
from tests.helpers import run_main
from training import migrate
from training.checkpoint_config import config_from_checkpoint
from training.toolkit.checkpoints import (
    AtomicCheckpointIO,
    atomic_torch_save,
    load_checkpoint_file,
    load_weights,
    newest_valid_checkpoint,
)
from training.toolkit.safe_load import (
    UnsafeCheckpointError,
    VanishedGlobal,
    code_exists,
    plain_checkpoint,
    trust_checkpoints,
)
from training.toolkit.stage_checkpoint import load_trained_module


class _WritesFile:
    """Unpickling this runs `exec`, which creates `marker`: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


@pytest.fixture
def malicious(tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint shaped like ours (weights, metadata) whose hyper-parameters run code when unpickled."""
    marker = tmp_path / "code_ran"
    path = tmp_path / "checkpoints" / "last.ckpt"
    path.parent.mkdir()
    torch.save(
        {
            "state_dict": {"net.weight": torch.zeros(2)},
            "hyper_parameters": {"payload": _WritesFile(marker)},
            "visioncore": {"schema_version": 2, "config": {"model": {}}, "git_revision": "x"},
        },
        path,
    )
    return path, marker


def _config(path: Path):
    return OmegaConf.create({"task": "test", "ckpt_path": str(path), "paths": {}, "resume": None})


DOORS: dict[str, Callable[[Path], object]] = {
    "load_checkpoint_file": load_checkpoint_file,
    "lightning ckpt_path= (fit/validate/test/predict, resume)": lambda p: (
        AtomicCheckpointIO().load_checkpoint(p)
    ),
    "resume=auto": lambda p: newest_valid_checkpoint(p.parent),
    "task=test|validate|predict|export|sample config": lambda p: config_from_checkpoint(_config(p), []),
    "task=export|sample, test_after_fit weights": lambda p: load_weights(torch.nn.Linear(1, 1), p),
    "design stage checkpoints": lambda p: load_trained_module(p, "model.encoder_checkpoint"),
    "design encoder resolution": trained_resolution,
    "ukiyoe feature checkpoint": ClassifierFeatures.from_checkpoint,
    "v1 pretrained_checkpoint": pretrained_weights,
}


@pytest.mark.parametrize("door", DOORS)
def test_every_door_refuses_a_checkpoint_that_would_run_code(door, malicious):
    path, marker = malicious
    with pytest.raises(UnsafeCheckpointError) as refused:
        DOORS[door](path)
    message = str(refused.value)
    assert str(path) in message and "builtins.exec" in message and "trust_checkpoint=true" in message
    assert not marker.exists()


@pytest.mark.parametrize(
    "door",
    [
        "task=test|validate|predict|export|sample config",
        "design stage checkpoints",
        "ukiyoe feature checkpoint",
    ],
)
def test_a_stored_config_that_would_call_foreign_code_is_refused(door, tmp_path):
    """Plain types can still name code: the stored run config is rebuilt with `hydra.utils.instantiate`."""
    marker = tmp_path / "code_ran"
    payload = {"_target_": "builtins.exec", "_args_": [f"open({str(marker)!r}, 'w').write('ran')"]}
    path = tmp_path / "checkpoints" / "last.ckpt"
    path.parent.mkdir()
    config = {
        "name": "x",
        "model": payload,
        "data": {"_target_": "datamodules.cnn.ImageClassificationDM"},
    }
    atomic_torch_save({"state_dict": {}, "visioncore": {"schema_version": 2, "config": config}}, path)
    with pytest.raises(
        UnsafeCheckpointError, match=r"model\._target_: builtins\.exec.*trust_checkpoint=true"
    ):
        DOORS[door](path)
    assert not marker.exists()


def test_migrate_refuses_it_and_opens_it_with_the_opt_in(malicious, tmp_path, capsys):
    path, marker = malicious
    new = tmp_path / "new.ckpt"
    assert migrate.main([str(path), str(new), "experiment=cnn_digits"]) == 2
    error = capsys.readouterr().err
    assert str(path) in error and "builtins.exec" in error and "--trust-checkpoint" in error
    assert not marker.exists() and not new.exists()
    with pytest.warns(UserWarning, match="full unpickling"):
        migrate.main([str(path), str(new), "experiment=cnn_digits", "--trust-checkpoint"])
    assert marker.read_text() == "ran"  # the opt-in really unpickles (the file then fails as a legacy layout)


def test_the_cli_refuses_it_in_one_paragraph(malicious, tmp_path):
    path, marker = malicious
    result = run_main(tmp_path, "task=test", f"ckpt_path={path}", check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in output
    assert "builtins.exec" in output and "trust_checkpoint=true" in output
    assert not marker.exists()


def test_the_opt_in_opens_a_trusted_file(malicious):
    path, marker = malicious
    with pytest.warns(UserWarning, match="full unpickling"), trust_checkpoints(True):
        checkpoint = load_checkpoint_file(path)
    assert marker.read_text() == "ran" and torch.equal(checkpoint["state_dict"]["net.weight"], torch.zeros(2))
    with pytest.raises(UnsafeCheckpointError):  # the trust ends with the task
        load_checkpoint_file(path)


def _vanished(module_name: str, name: str, obj):
    """Pickle `obj` as `module_name.name`, then let that module vanish, as a predecessor project's did."""
    module = types.ModuleType(module_name)
    setattr(module, name, obj)
    obj.__module__, obj.__qualname__ = module_name, name
    sys.modules[module_name] = module
    return module_name


def test_references_to_vanished_code_read_as_inert_placeholders(tmp_path):
    """Yates-Lab's PLCoreVisionModel pickled `model_class=build_model` from its own `models` package,
    which VisionCore's `models` shadows: the file still opens, nothing is imported, the weights are kept."""

    def build_model(config):  # pragma: no cover - never called
        raise AssertionError

    class ModelConfig:
        pass

    config = ModelConfig()
    config.depth = 3
    names = [_vanished("models.build", "build_model", build_model)]
    names.append(_vanished("models.lightning.config", "ModelConfig", ModelConfig))
    path = tmp_path / "old.ckpt"
    weights = OrderedDict(weight=torch.arange(3.0))
    torch.save({"state_dict": weights, "hyper_parameters": {"model_class": build_model, "cfg": config}}, path)
    for name in names:
        del sys.modules[name]

    assert not code_exists("models.build.build_model") and code_exists("posix.system")
    with pytest.warns(UserWarning, match="no longer exists"):
        checkpoint = load_checkpoint_file(path)
    assert "models.build" not in sys.modules and "models.lightning" not in sys.modules
    assert torch.equal(checkpoint["state_dict"]["weight"], weights["weight"])
    model_class, old_config = (
        checkpoint["hyper_parameters"]["model_class"],
        checkpoint["hyper_parameters"]["cfg"],
    )
    assert (
        issubclass(model_class, VanishedGlobal) and model_class.vanished_global == "models.build.build_model"
    )
    assert isinstance(old_config, VanishedGlobal) and old_config.state == {"depth": 3}


def test_what_we_write_is_plain_and_reloads_weights_only(tmp_path):
    """Lightning's hyper-parameters arrive as OmegaConf nodes and the RNG state holds numpy arrays."""
    state_dict = OrderedDict(w=torch.ones(2))
    state_dict._metadata = {"": {"version": 1}}
    numpy_state = np.random.get_state()
    checkpoint = {
        "state_dict": state_dict,
        "hyper_parameters": OmegaConf.create({"sizes": [1, 2], "nested": {"a": 1.5}}),
        "counts": defaultdict(int, a=2),
        "resume_state": {"numpy": numpy_state, "step": np.int64(7), "path": tmp_path},
    }
    atomic_torch_save(checkpoint, tmp_path / "c.ckpt")
    loaded = torch.load(tmp_path / "c.ckpt", weights_only=True)
    assert loaded["hyper_parameters"] == {"sizes": [1, 2], "nested": {"a": 1.5}}
    assert loaded["counts"] == {"a": 2} and loaded["resume_state"]["step"] == 7
    assert loaded["resume_state"]["path"] == str(tmp_path)
    assert loaded["state_dict"]._metadata == {"": {"version": 1}}
    np.random.rand(5)
    np.random.set_state(loaded["resume_state"]["numpy"])  # what ResumeState.on_load_checkpoint does
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])
    assert plain_checkpoint(state_dict) is state_dict  # already plain: not copied


def test_resume_state_round_trips_through_a_weights_only_file(tmp_path):
    """The RNG streams saved by ResumeState come back exactly after a weights-only reload."""
    callback, checkpoint = ResumeState(), {}
    trainer = types.SimpleNamespace(train_dataloader=None)
    callback.on_save_checkpoint(trainer, None, checkpoint)
    expected = (np.random.rand(3), torch.rand(3))
    atomic_torch_save(checkpoint, tmp_path / "r.ckpt")
    callback.on_load_checkpoint(trainer, None, load_checkpoint_file(tmp_path / "r.ckpt"))
    assert np.array_equal(np.random.rand(3), expected[0]) and torch.equal(torch.rand(3), expected[1])


def test_a_colleagues_checkpoint_reads_this_machines_data_and_cache_folders(tmp_path):
    """The stored config is resolved: its data and feature-cache folders are the training machine's."""
    path = tmp_path / "run" / "best.ckpt"
    path.parent.mkdir()
    alice = "/home/alice"
    theirs = {"root_dir": alice, "data_dir": f"{alice}/data", "output_dir": f"{alice}/logs/x/runs/a"}
    theirs["feature_cache"] = f"{alice}/cache/fid_features"
    config = {
        "name": "x",
        "paths": theirs,
        "data": {"data_dir": "/home/alice/data", "batch_size": 8},
        "model": {"quality": {"feature_cache": "/home/alice/cache/fid_features", "seed": 0}},
        "stage": {"encoder_checkpoint": "/home/alice/data/encoder.ckpt"},
        "logger": {"csv": {"save_dir": "/home/alice/logs/x/runs/a"}},
    }
    atomic_torch_save({"state_dict": {}, "visioncore": {"schema_version": 2, "config": config}}, path)
    ours = {"root_dir": "/me", "data_dir": "/me/data", "feature_cache": "/me/cache", "output_dir": "/me/out"}
    current = OmegaConf.create({"task": "test", "ckpt_path": str(path), "paths": ours, "resume": None})
    rebuilt = config_from_checkpoint(current, [])
    assert rebuilt.data.data_dir == "/me/data" and rebuilt.model.quality.feature_cache == "/me/cache"
    assert rebuilt.stage.encoder_checkpoint == "/home/alice/data/encoder.ckpt"  # a file: kept where it was
    assert rebuilt.logger.csv.save_dir == "/home/alice/logs/x/runs/a"  # the training run's own folder
    given = OmegaConf.merge(current, {"data": {"data_dir": "/elsewhere"}})  # what that override composes
    assert config_from_checkpoint(given, ["data.data_dir=/elsewhere"]).data.data_dir == "/elsewhere"
