"""Legacy checkpoints load through explicit migrations: identical outputs, strict keys, clear errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import hydra
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tests.helpers import REPO, cli_env, compose_config, quiet_trainer, read_summary, run_main
from training.migrate import main, migrate
from training.toolkit.checkpoints import META_KEY, SCHEMA_VERSION, checkpoint_metadata, load_checkpoint_file
from training.toolkit.errors import UserError
from training.toolkit.legacy import MIGRATIONS, LegacyCheckpointError, WeightsMismatchError, load_legacy_into


@pytest.fixture(scope="module")
def digits_cfg() -> DictConfig:
    return compose_config(["experiment=cnn_digits"])


def train_on_digits(net: nn.Module, cfg: DictConfig, optimizer: torch.optim.Optimizer, steps: int) -> None:
    """A few real steps, so weights, BatchNorm statistics and optimizer state are all non-trivial."""
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    net.train()
    for _, (images, labels) in zip(range(steps), datamodule.train_dataloader(), strict=False):
        loss = F.cross_entropy(net(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    net.eval()


@pytest.fixture(scope="module")
def playground(tmp_path_factory: pytest.TempPathFactory, digits_cfg: DictConfig) -> tuple[Path, nn.Module]:
    """A pre-Lightning script's file: DataParallel-wrapped network, Adam state, epoch and loss."""
    torch.manual_seed(0)
    net = hydra.utils.instantiate(digits_cfg.model.net)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    train_on_digits(net, digits_cfg, optimizer, steps=25)
    path = tmp_path_factory.mktemp("playground") / "model_epoch7.pt"
    torch.save(
        {
            "epoch": 7,
            "model_state_dict": nn.DataParallel(net).state_dict(),
            "optimizer_state_dict": optimizer.state_dict(),
            "loss": 0.25,
        },
        path,
    )
    return path, net


class LitClassifier(pl.LightningModule):
    """The older LightningModule: the network under `model.`, SGD with momentum."""

    def __init__(self, model: nn.Module, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, labels = batch
        return F.cross_entropy(self.model(images), labels)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)


@pytest.fixture(scope="module")
def lightning_v0(tmp_path_factory: pytest.TempPathFactory, digits_cfg: DictConfig) -> tuple[Path, nn.Module]:
    """A real Lightning checkpoint of `LitClassifier` after two training steps."""
    torch.manual_seed(1)
    lit = LitClassifier(hydra.utils.instantiate(digits_cfg.model.net))
    data = TensorDataset(torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,)))
    path = tmp_path_factory.mktemp("lightning_v0") / "epoch=0-step=2.ckpt"
    trainer = quiet_trainer(path.parent, max_steps=2)
    trainer.fit(lit, DataLoader(data, batch_size=8))
    trainer.save_checkpoint(path)
    return path, lit.model.eval()


def fresh_classifier(cfg: DictConfig) -> pl.LightningModule:
    return hydra.utils.instantiate(cfg.model)


@pytest.mark.parametrize(
    "fixture, name, step", [("playground", "torch_playground_v0", 0), ("lightning_v0", "lightning_v0", 2)]
)
def test_legacy_file_loads_with_identical_outputs(
    request: pytest.FixtureRequest, digits_cfg: DictConfig, fixture: str, name: str, step: int
) -> None:
    path, legacy_net = request.getfixturevalue(fixture)
    module = fresh_classifier(digits_cfg).eval()
    with pytest.warns(DeprecationWarning, match=rf"legacy '{name}'.*python -m training.migrate"):
        converted = load_legacy_into(module, path)
    images = torch.randn(6, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(module(images), legacy_net(images))
    assert converted["global_step"] == step
    assert converted["optimizer_state"] is not None


def test_renamed_or_missing_key_fails_strict_loading(
    tmp_path: Path, playground: tuple[Path, nn.Module], digits_cfg: DictConfig
) -> None:
    old = torch.load(playground[0], weights_only=True)
    weights = old["model_state_dict"]
    weights["module.features.0.0.kernel"] = weights.pop("module.features.0.0.weight")
    del weights["module.classifier.bias"]
    torch.save(old, tmp_path / "renamed.pt")
    module = fresh_classifier(digits_cfg)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    with pytest.warns(DeprecationWarning), pytest.raises(WeightsMismatchError) as caught:
        load_legacy_into(module, tmp_path / "renamed.pt")
    message = str(caught.value)
    assert (
        "2 missing keys (the model has them" in message
        and "net.features.0.0.weight" in message
        and "net.classifier.bias" in message
    )
    assert "1 unexpected keys (the file has them" in message and "net.features.0.0.kernel" in message
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items()), (
        "nothing may be half-loaded"
    )


def test_unknown_or_current_format_is_refused_with_the_known_formats(
    tmp_path: Path, digits_cfg: DictConfig
) -> None:
    torch.save({"weights": {"conv.weight": torch.zeros(1)}, "step": 3}, tmp_path / "foreign.pt")
    with pytest.raises(LegacyCheckpointError, match="no known checkpoint format") as caught:
        load_legacy_into(fresh_classifier(digits_cfg), tmp_path / "foreign.pt")
    assert all(name in str(caught.value) for name in ("torch_playground_v0", "lightning_v0"))
    torch.save({"state_dict": {}, META_KEY: checkpoint_metadata({})}, tmp_path / "current.ckpt")
    with pytest.raises(LegacyCheckpointError, match="already a current VisionCore checkpoint"):
        load_legacy_into(fresh_classifier(digits_cfg), tmp_path / "current.ckpt")


def test_every_migration_is_versioned_and_documented() -> None:
    assert {"torch_playground_v0", "lightning_v0"} <= set(MIGRATIONS)
    for name, migration in MIGRATIONS.items():
        assert re.fullmatch(r"[a-z0-9_]+_v\d+", name) and migration.name == name
        assert len(migration.summary()) > 20


def test_migrate_writes_current_checkpoint_and_carries_adam_state(
    tmp_path: Path, playground: tuple[Path, nn.Module], digits_cfg: DictConfig
) -> None:
    old_path, legacy_net = playground
    done = migrate(old_path, tmp_path / "new.ckpt", ["experiment=cnn_digits"])
    assert done["format"] == "torch_playground_v0" and done["optimizer"].startswith("carried over")
    new = load_checkpoint_file(tmp_path / "new.ckpt")
    meta = new[META_KEY]
    assert (
        meta["schema_version"] == SCHEMA_VERSION
        and meta["config"]["name"] == "cnn_digits"
        and meta["git_revision"]
    )
    assert meta["migrated_from"]["format"] == "torch_playground_v0"
    assert meta["migrated_from"]["path"] == str(old_path)
    assert (
        new["epoch"] == 7 and new["global_step"] == 0 and new["pytorch-lightning_version"] == pl.__version__
    )
    assert all(torch.equal(new["state_dict"]["net." + k], v) for k, v in legacy_net.state_dict().items())
    # Optimizer state follows its weight, although the current optimizer splits parameters into 2 groups.
    old_adam = torch.load(old_path, weights_only=True)["optimizer_state_dict"]["state"]
    module = fresh_classifier(digits_cfg)
    assert type(module.optimizer_factory(module.parameters())).__name__ == "AdamW"
    names = list(dict(module.named_parameters()))
    new_state, groups = new["optimizer_states"][0]["state"], new["optimizer_states"][0]["param_groups"]
    position = [i for g in groups for i in g["params"]]
    assert len(groups) == 2 and sorted(position) == list(range(len(names)))
    classifier_index = names.index("net.classifier.weight")
    new_index = next(i for i, state in new_state.items() if state["exp_avg"].shape == (10, 64))
    assert torch.equal(new_state[new_index]["exp_avg"], old_adam[classifier_index]["exp_avg"])


def test_migrate_drops_optimizer_state_of_another_kind(
    tmp_path: Path, lightning_v0: tuple[Path, nn.Module]
) -> None:
    done = migrate(lightning_v0[0], tmp_path / "new.ckpt", ["experiment=cnn_digits"])
    assert done["format"] == "lightning_v0" and done["global_step"] == 2
    assert (
        done["optimizer"].startswith("dropped")
        and "momentum" in done["optimizer"]
        and "AdamW" in done["optimizer"]
    )
    new = load_checkpoint_file(tmp_path / "new.ckpt")
    assert "optimizer_states" not in new and new[META_KEY]["migrated_from"]["format"] == "lightning_v0"


def test_migrate_to_the_wrong_model_names_the_keys_and_the_right_experiment(
    tmp_path: Path, playground: tuple[Path, nn.Module], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UserError) as caught:
        migrate(playground[0], tmp_path / "new.ckpt", ["experiment=cnn_digits", "model=resnet20"])
    message = str(caught.value)
    assert (
        "missing keys" in message and "net.conv1.weight" in message and "net.features.0.0.weight" in message
    )
    assert "They fit: " in message and "experiment=cnn_digits" in message
    assert not (tmp_path / "new.ckpt").exists()
    assert main([str(playground[0]), str(tmp_path / "new.ckpt"), "model=resnet20"]) == 2
    assert "training.migrate:" in capsys.readouterr().err


def test_cli_refuses_unknown_format_with_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.save({"weights": {}}, tmp_path / "foreign.pt")
    assert main([str(tmp_path / "foreign.pt"), str(tmp_path / "new.ckpt"), "experiment=cnn_digits"]) == 2
    err = capsys.readouterr().err
    assert "Known formats: torch_playground_v0" in err and "lightning_v0" in err


def digits_test_accuracy(net: nn.Module, cfg: DictConfig) -> tuple[float, int]:
    """Accuracy on the digits test split, and the split's size."""
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("test")
    correct = total = 0
    with torch.no_grad():
        for images, labels in datamodule.test_dataloader():
            correct += int((net(images).argmax(1) == labels).sum())
            total += len(labels)
    return correct / total, total


@pytest.mark.slow
def test_cli_migrate_then_test_reports_the_legacy_accuracy(
    tmp_path: Path, playground: tuple[Path, nn.Module], digits_cfg: DictConfig
) -> None:
    old_path, legacy_net = playground
    new_path = tmp_path / "migrated" / "digits.ckpt"
    result = subprocess.run(
        [sys.executable, "-m", "training.migrate", str(old_path), str(new_path), "experiment=cnn_digits"],
        cwd=REPO,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "torch_playground_v0" in result.stderr and "carried over" in result.stderr
    run_main(tmp_path, "task=test", f"ckpt_path={new_path}", "trainer.enable_progress_bar=false")
    (run_dir,) = (tmp_path / "logs" / "eval").iterdir()
    summary: dict[str, Any] = read_summary(run_dir)
    assert summary["status"] == "finished" and summary["experiment"] == "cnn_digits"
    # The CLI is another process with another thread count (OMP_NUM_THREADS=1): its float32 logits may differ
    # in the last bits and flip the argmax of a near-tie. One flipped digit is allowed; a broken migration
    # (a missed or misplaced tensor) costs far more than that.
    accuracy, total = digits_test_accuracy(legacy_net, digits_cfg)
    assert summary["metrics"]["test/acc"] == pytest.approx(accuracy, abs=1.5 / total)
