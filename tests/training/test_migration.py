"""The migration mechanism: strict keys, clear refusals, metadata, optimizer state, the CLI.

The files are the real predecessor's (Torch-Playground's bare `torch.save(model.state_dict())`, see
tests/models/cnn/test_torch_playground.py for their outputs); optimizer-state carrying is tested on the
function itself, since Torch-Playground saved none (v1's seed files, which have it, are in tests/models/v1).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import hydra
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import DictConfig

import models.cnn.legacy  # noqa: F401  (registers the Torch-Playground formats, as plugins.cnn_migrations does)
from tests.helpers import REPO, cli_env, compose_config
from tests.models.cnn.torch_playground_nets import TPDenseNet3, save_like_torch_playground, trained_looking
from training.migrate import carry_optimizer_state, main, migrate
from training.toolkit.checkpoints import META_KEY, SCHEMA_VERSION, checkpoint_metadata, load_checkpoint_file
from training.toolkit.errors import UserError
from training.toolkit.legacy import (
    MIGRATIONS,
    ConvertedCheckpoint,
    LegacyCheckpointError,
    WeightsMismatchError,
    load_legacy_into,
)

DENSENET40 = ["experiment=cifar10_densenet40"]


@pytest.fixture(scope="module")
def densenet3_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """`save/DenseNet3.pth` as Torch-Playground wrote it (random weights and BatchNorm statistics)."""
    net = trained_looking(TPDenseNet3(), seed=11)
    return save_like_torch_playground(net, tmp_path_factory.mktemp("tp") / "save" / "DenseNet3.pth"), net


def densenet40_module(stem_channels: int | None = 24) -> pl.LightningModule:
    cfg = compose_config([*DENSENET40, f"model.net.stem_channels={stem_channels or 'null'}"])
    return hydra.utils.instantiate(cfg.model).eval()


def test_legacy_file_loads_in_memory_with_a_deprecation_warning(
    densenet3_file: tuple[Path, torch.nn.Module],
) -> None:
    path, tp_net = densenet3_file
    module = densenet40_module()
    with pytest.warns(
        DeprecationWarning, match=r"legacy 'torch_playground_densenet3_v0'.*python -m training\.migrate"
    ):
        converted = load_legacy_into(module, path)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(module(images), tp_net(images), rtol=1e-5, atol=1e-6)
    assert converted["config_overrides"] == {"model.net.stem_channels": 24}
    assert converted["epoch"] == converted["global_step"] == 0 and converted["optimizer_state"] is None


def test_a_module_built_without_the_files_values_is_refused_untouched(
    densenet3_file: tuple[Path, torch.nn.Module],
) -> None:
    module = densenet40_module(stem_channels=None)  # the paper's 16-channel stem: every shape differs
    before = {k: v.clone() for k, v in module.state_dict().items()}
    with pytest.warns(DeprecationWarning), pytest.raises(WeightsMismatchError) as caught:
        load_legacy_into(module, densenet3_file[0])
    assert "net.features.0.weight (24, 3, 3, 3) vs (16, 3, 3, 3)" in str(caught.value)
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items()), (
        "nothing may be half-loaded"
    )


def test_renamed_or_missing_key_fails_strict_loading(
    tmp_path: Path, densenet3_file: tuple[Path, torch.nn.Module]
) -> None:
    weights = torch.load(densenet3_file[0], weights_only=True)
    weights["block2.layer.3.bn1.gamma"] = weights.pop("block2.layer.3.bn1.weight")
    del weights["fc.bias"]
    torch.save(weights, tmp_path / "renamed.pth")
    module = densenet40_module()
    with pytest.warns(DeprecationWarning), pytest.raises(WeightsMismatchError) as caught:
        load_legacy_into(module, tmp_path / "renamed.pth")
    message = str(caught.value)
    assert "2 missing keys (the model has them" in message
    assert "net.features.3.3.body.0.weight" in message and "net.classifier.bias" in message
    assert "1 unexpected keys (the file has them" in message and "net.features.3.3.body.0.gamma" in message


def test_unknown_or_current_format_is_refused_with_the_known_formats(tmp_path: Path) -> None:
    torch.save({"weights": {"conv.weight": torch.zeros(1)}, "step": 3}, tmp_path / "foreign.pt")
    with pytest.raises(LegacyCheckpointError, match="no known checkpoint format") as caught:
        load_legacy_into(densenet40_module(), tmp_path / "foreign.pt")
    assert "torch_playground_densenet3_v0" in str(caught.value)
    assert "torch_playground_no_counterpart_v0" in str(caught.value)
    torch.save({"state_dict": {}, META_KEY: checkpoint_metadata({})}, tmp_path / "current.ckpt")
    with pytest.raises(LegacyCheckpointError, match="already a current VisionCore checkpoint"):
        load_legacy_into(densenet40_module(), tmp_path / "current.ckpt")
    # a bare state dict of a network Torch-Playground never had (torchvision's ResNet-18 names)
    torch.save({"conv1.weight": torch.zeros(1), "fc.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(LegacyCheckpointError, match=r"no known checkpoint format \(top-level keys: conv1"):
        load_legacy_into(densenet40_module(), tmp_path / "other.pth")


def test_every_migration_is_versioned_and_documented() -> None:
    for name, migration in MIGRATIONS.items():
        assert re.fullmatch(r"[a-z0-9_]+_v\d+", name) and migration.name == name
        assert len(migration.summary()) > 20
        assert "main.py:228-231" in (type(migration).__doc__ or "") or not name.startswith("torch_playground")


def test_migrate_writes_a_current_checkpoint_with_the_files_values(
    tmp_path: Path, densenet3_file: tuple[Path, torch.nn.Module]
) -> None:
    old_path, tp_net = densenet3_file
    done = migrate(old_path, tmp_path / "new.ckpt", DENSENET40)
    assert done["format"] == "torch_playground_densenet3_v0"
    assert done["config_overrides"] == {"model.net.stem_channels": 24}
    assert done["optimizer"] == "dropped: the old file has none"
    new = load_checkpoint_file(tmp_path / "new.ckpt")
    meta = new[META_KEY]
    assert meta["schema_version"] == SCHEMA_VERSION and meta["git_revision"]
    assert (
        meta["config"]["name"] == "cifar10_densenet40"
        and meta["config"]["model"]["net"]["stem_channels"] == 24
    )
    assert meta["migrated_from"]["path"] == str(old_path)
    assert meta["migrated_from"]["format"] == "torch_playground_densenet3_v0"
    assert (
        new["epoch"] == 0 and new["global_step"] == 0 and new["pytorch-lightning_version"] == pl.__version__
    )
    assert "optimizer_states" not in new
    tp_state = tp_net.state_dict()
    assert torch.equal(new["state_dict"]["net.features.0.weight"], tp_state["conv1.weight"])
    assert torch.equal(
        new["state_dict"]["net.features.3.5.body.0.running_var"], tp_state["block2.layer.5.bn1.running_var"]
    )
    assert torch.equal(new["state_dict"]["net.features.4.2.weight"], tp_state["trans2.conv1.weight"])
    assert torch.equal(new["state_dict"]["net.features.6.running_mean"], tp_state["bn1.running_mean"])
    assert torch.equal(new["state_dict"]["net.classifier.bias"], tp_state["fc.bias"])


def test_migrate_refuses_to_overwrite_the_old_file(densenet3_file: tuple[Path, torch.nn.Module]) -> None:
    with pytest.raises(UserError, match="NEW must differ from OLD"):
        migrate(densenet3_file[0], densenet3_file[0], DENSENET40)


def test_a_damaged_file_names_the_keys_and_writes_nothing(
    tmp_path: Path, densenet3_file: tuple[Path, torch.nn.Module], capsys: pytest.CaptureFixture[str]
) -> None:
    weights = torch.load(densenet3_file[0], weights_only=True)
    del weights["block3.layer.11.conv1.weight"]
    torch.save(weights, tmp_path / "damaged.pth")
    with pytest.raises(UserError) as caught:
        migrate(tmp_path / "damaged.pth", tmp_path / "new.ckpt", DENSENET40)
    message = str(caught.value)
    assert "1 missing keys" in message and "net.features.5.11.body.2.weight" in message
    assert "architecture matches `experiment=cifar10_densenet40`" in message and "damaged" in message
    assert not (tmp_path / "new.ckpt").exists()


def test_cli_refuses_unknown_format_with_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.save({"weights": {}}, tmp_path / "foreign.pt")
    assert main([str(tmp_path / "foreign.pt"), str(tmp_path / "new.ckpt"), *DENSENET40]) == 2
    err = capsys.readouterr().err
    assert err.startswith("training.migrate: ") and "Known formats: torch_playground_densenet3_v0" in err


# ---------------------------------------------------------------------------------------------------------
# Optimizer state: carried when it maps 1:1 onto the module's parameters (v1's seed files have it).


@pytest.fixture(scope="module")
def digits_cfg() -> DictConfig:
    return compose_config(["experiment=cnn_digits"])


def converted_after_steps(cfg: DictConfig, optimizer_class: type, **options: float) -> ConvertedCheckpoint:
    """A network trained a few steps by a plain loop (all parameters in one group, module order): its
    weights under `net.` and its optimizer state, as a migration returns them."""
    torch.manual_seed(0)
    net = hydra.utils.instantiate(cfg.model.net)
    optimizer = optimizer_class(net.parameters(), **options)
    for _ in range(3):
        optimizer.zero_grad()
        F.cross_entropy(net(torch.randn(8, 1, 8, 8)), torch.randint(0, 10, (8,))).backward()
        optimizer.step()
    return ConvertedCheckpoint(
        state_dict={"net." + k: v for k, v in net.state_dict().items()},
        epoch=1,
        global_step=3,
        optimizer_state=optimizer.state_dict(),
        notes=[],
    )


def test_adam_state_follows_each_weight_across_the_modules_parameter_groups(digits_cfg: DictConfig) -> None:
    converted = converted_after_steps(digits_cfg, torch.optim.Adam, lr=1e-2)
    module = hydra.utils.instantiate(digits_cfg.model)
    state, note = carry_optimizer_state(module, converted)
    assert note.startswith("carried over") and state is not None
    assert type(module.optimizer_factory(module.parameters())).__name__ == "AdamW"
    names = list(dict(module.named_parameters()))
    groups = state["param_groups"]
    position = [i for g in groups for i in g["params"]]
    assert len(groups) == 2 and sorted(position) == list(range(len(names)))  # decay / no-decay split
    old = converted["optimizer_state"]["state"][names.index("net.classifier.weight")]["exp_avg"]
    new_index = next(i for i, s in state["state"].items() if s["exp_avg"].shape == (10, 64))
    assert torch.equal(state["state"][new_index]["exp_avg"], old)


def test_optimizer_state_of_another_kind_is_dropped_with_the_reason(digits_cfg: DictConfig) -> None:
    converted = converted_after_steps(digits_cfg, torch.optim.SGD, lr=0.05, momentum=0.9)
    state, note = carry_optimizer_state(hydra.utils.instantiate(digits_cfg.model), converted)
    assert state is None and note.startswith("dropped") and "momentum" in note and "AdamW" in note


# ---------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_migrate_in_its_own_process_logs_the_files_values(
    tmp_path: Path, densenet3_file: tuple[Path, torch.nn.Module]
) -> None:
    new_path = tmp_path / "migrated" / "densenet3.ckpt"
    result = subprocess.run(
        [sys.executable, "-m", "training.migrate", str(densenet3_file[0]), str(new_path), *DENSENET40],
        cwd=REPO,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "torch_playground_densenet3_v0" in result.stderr
    assert "model.net.stem_channels=24 from the file" in result.stderr
    assert load_checkpoint_file(new_path)[META_KEY]["config"]["model"]["net"]["stem_channels"] == 24


def test_help_lists_the_formats_every_system_registers(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = capsys.readouterr().out.split("Known formats:", 1)[1]
    assert "torch_playground_densenet3_v0" in listed and "yates_visioncore_v1" in listed
