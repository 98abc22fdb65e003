"""Real Torch-Playground checkpoints migrate into the cnn system: the same outputs as TP's own networks.

Each file is written as TP's `save_model` (main.py:228-231) wrote it, `torch.save(model.state_dict(), path)`,
from stand-ins of its networks (`torch_playground_nets`) with random weights and BatchNorm running statistics,
migrated with the CLI, and its network rebuilt from the migrated file alone.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import hydra
import joblib
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

import models.cnn.legacy  # noqa: F401  (registers the Torch-Playground formats, as plugins.cnn_migrations does)
from models.cnn.nets.densenet import DenseNet3
from tests.helpers import compose_config, read_summary, run_main
from tests.models.cnn.torch_playground_nets import (
    TPDenseNet,
    TPDenseNet3,
    TPResNet18,
    TPSimpleMNIST,
    TPSimpleModel,
    save_like_torch_playground,
    trained_looking,
)
from training.migrate import main
from training.toolkit.checkpoints import META_KEY, load_checkpoint_file
from training.toolkit.legacy import MIGRATIONS, LegacyCheckpointError, detect, load_legacy_into

CASES: dict[str, tuple[Any, list[str], str]] = {
    # name: (TP network, migrate overrides, format)
    "DenseNet3": (lambda: TPDenseNet3(), ["experiment=cifar10_densenet40"], "torch_playground_densenet3_v0"),
    "DenseNet": (
        lambda: TPDenseNet(),
        ["experiment=cifar10_densenet40", "model=densenet_bc100", "name=cifar10_densenet_bc100"],
        "torch_playground_densenet_bc_v0",
    ),
    "ResNet18": (lambda: TPResNet18(), ["experiment=cifar10_resnet18"], "torch_playground_resnet18_v0"),
    # TP's DenseNet3 class with its (never defaulted) BottleneckBlock and compression: read from the shapes too
    "DenseNet3-BC": (
        lambda: TPDenseNet3(depth=16, growth_rate=6, reduction=0.5, bottleneck=True),
        [
            "experiment=cifar10_densenet40",
            "model.net.depth=16",
            "model.net.growth_rate=6",
            "model.net.bottleneck=true",
            "model.net.reduction=0.5",
        ],
        "torch_playground_densenet3_v0",
    ),
}


def rebuild_from(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The network of a migrated checkpoint, built from its stored config alone (as task=test does)."""
    checkpoint = load_checkpoint_file(path)
    config = checkpoint[META_KEY]["config"]
    module = hydra.utils.instantiate(OmegaConf.create(config).model)
    module.load_state_dict(checkpoint["state_dict"], strict=True)
    return module.net.eval(), checkpoint


@pytest.fixture(scope="module", params=list(CASES))
def migrated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    name = request.param
    build, overrides, _ = CASES[name]
    torch.manual_seed(0)
    tp_net = trained_looking(build(), seed=len(name))
    folder = tmp_path_factory.mktemp(name)
    old = save_like_torch_playground(tp_net, folder / "save" / f"{name}.pth")
    new = folder / "migrated" / f"{name}.ckpt"
    assert main([str(old), str(new), *overrides]) == 0
    vc_net, checkpoint = rebuild_from(new)
    return {"name": name, "tp": tp_net, "vc": vc_net, "checkpoint": checkpoint, "old": old, "new": new}


def max_differences(tp_net: nn.Module, vc_net: nn.Module) -> tuple[float, float]:
    """(float64 max absolute, float32 max relative) output differences on the same random images."""
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        tp32, vc32 = tp_net.float()(images), vc_net.float()(images)
        tp64, vc64 = tp_net.double()(images.double()), vc_net.double()(images.double())
    tp_net.float(), vc_net.float()
    relative = ((vc32 - tp32).abs().max() / tp32.abs().max()).item()
    return (vc64 - tp64).abs().max().item(), relative


def test_migrated_network_gives_torch_playgrounds_outputs(migrated: dict[str, Any]) -> None:
    tp_net, vc_net = migrated["tp"], migrated["vc"]
    assert sum(p.numel() for p in vc_net.parameters()) == sum(p.numel() for p in tp_net.parameters())
    absolute64, relative32 = max_differences(tp_net, vc_net)
    assert absolute64 <= 1e-10, f"{migrated['name']}: float64 outputs differ by {absolute64:.3g}"
    assert relative32 <= 1e-5, f"{migrated['name']}: float32 outputs differ by {relative32:.3g} (relative)"
    with torch.no_grad():  # the outputs vary: equal outputs are not those of a near-constant network
        assert tp_net(torch.randn(2, 3, 32, 32)).std() > 0.1


def test_every_tensor_carries_over_including_batchnorm_statistics(migrated: dict[str, Any]) -> None:
    tp_state = migrated["tp"].state_dict()
    vc_state = migrated["vc"].state_dict()
    assert len(tp_state) == len(vc_state)
    tp_stats = sorted(
        v.sum().item() for k, v in tp_state.items() if k.endswith(("running_mean", "running_var"))
    )
    vc_stats = sorted(
        v.sum().item() for k, v in vc_state.items() if k.endswith(("running_mean", "running_var"))
    )
    assert tp_stats == vc_stats and len(tp_stats) > 10
    assert {int(v) for k, v in vc_state.items() if k.endswith("num_batches_tracked")} == {782 * 295}


def test_migrated_file_records_the_format_and_weights_only(migrated: dict[str, Any]) -> None:
    checkpoint = migrated["checkpoint"]
    record = checkpoint[META_KEY]["migrated_from"]
    assert record["format"] == CASES[migrated["name"]][2] and record["path"] == str(migrated["old"])
    assert (
        checkpoint["epoch"] == 0 and checkpoint["global_step"] == 0 and "optimizer_states" not in checkpoint
    )
    assert record["optimizer"].startswith("dropped: the old file has none")
    assert "no optimizer state, epoch or LR schedule" in record["notes"][0]
    overrides = CASES[migrated["name"]][1]
    name = next(o.split("=")[1] for o in reversed(overrides) if o.startswith(("name=", "experiment=")))
    assert checkpoint[META_KEY]["config"]["name"] == name  # e.g. cifar10_densenet_bc100 for TP's DenseNet


def test_the_stem_width_is_read_from_the_file_and_stored_in_the_config(migrated: dict[str, Any]) -> None:
    checkpoint, name = migrated["checkpoint"], migrated["name"]
    net_config = checkpoint[META_KEY]["config"]["model"]["net"]
    file_values = checkpoint[META_KEY]["migrated_from"]["config_overrides"]
    if name == "ResNet18":  # nothing in its architecture is left open
        assert file_values == {} and "stem_channels" not in net_config
        return
    stem = (
        migrated["tp"]
        .state_dict()["features.conv0.weight" if name == "DenseNet" else "conv1.weight"]
        .shape[0]
    )
    assert stem == (12 if name == "DenseNet3-BC" else 24)  # 2k in every TP DenseNet
    assert net_config["stem_channels"] == stem and file_values == {"model.net.stem_channels": stem}


def test_densenet40_without_the_stem_key_is_the_papers_16_channel_network() -> None:
    """Configs and checkpoints from before `stem_channels` existed build what they always built."""
    cfg = compose_config(["experiment=cifar10_densenet40"])
    assert cfg.model.net.stem_channels is None
    net = hydra.utils.instantiate(cfg.model).net
    assert net.features[0].weight.shape == (16, 3, 3, 3)
    del cfg.model.net.stem_channels
    assert hydra.utils.instantiate(cfg.model).net.features[0].weight.shape == (16, 3, 3, 3)


def test_a_24_channel_stem_gives_torch_playgrounds_parameter_count() -> None:
    """1,059,298: TP's DenseNet3 (depth 40, k=12, stem 2k = 24), against the paper's 1,019,722 with 16."""
    net = DenseNet3(40, num_classes=10, growth_rate=12, stem_channels=24)
    assert sum(p.numel() for p in net.parameters()) == 1_059_298
    assert net.num_features == 456  # 24 + 3 * 12 * 12 channels before the classifier
    with pytest.raises(ValueError, match="stem_channels must be a positive integer or null"):
        DenseNet3(40, num_classes=10, stem_channels=0)


def test_test_task_runs_from_the_migrated_file_alone(tmp_path: Path) -> None:
    """`task=test ckpt_path=NEW` rebuilds the 24-wide stem from NEW's config; its loss is TP's loss. CIFAR-10
    is not on this machine, so the test set is 32x32 RGB procedural images with 10 classes."""
    tp_net = trained_looking(TPDenseNet3(), seed=3)
    old = save_like_torch_playground(tp_net, tmp_path / "save" / "DenseNet3.pth")
    new = tmp_path / "migrated" / "DenseNet3.ckpt"
    assert main([str(old), str(new), "experiment=cifar10_densenet40"]) == 0
    data = [
        "data=procedural",
        "data.procedural.num_classes=10",
        "data.procedural.channels=3",
        "data.procedural.image_size=32",
        "data.procedural.num_samples=100",
        "data.eval_batch_size=10",
        "data.num_workers=0",
    ]
    run_main(tmp_path, "task=test", f"ckpt_path={new}", *data, "trainer.limit_test_batches=1")
    (run_dir,) = (tmp_path / "logs" / "eval").iterdir()
    summary = read_summary(run_dir)
    assert summary["status"] == "finished" and summary["experiment"] == "cifar10_densenet40"

    datamodule = hydra.utils.instantiate(compose_config(["experiment=cifar10_densenet40", *data]).data)
    datamodule.setup("test")
    images, labels = next(iter(datamodule.test_dataloader()))
    with torch.no_grad():
        logits = tp_net(images)
    assert summary["metrics"]["test/loss"] == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-5)
    assert summary["metrics"]["test/acc"] == pytest.approx((logits.argmax(1) == labels).float().mean().item())


# ---------------------------------------------------------------------------------------------------------
# What is refused, each in one paragraph.


def test_a_shape_that_contradicts_the_experiment_names_the_key_and_the_files_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = save_like_torch_playground(TPDenseNet3(growth_rate=24), tmp_path / "DenseNet3k24.pth")
    new = tmp_path / "new.ckpt"
    assert main([str(old), str(new), "experiment=cifar10_densenet40"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(old) in err
    assert "model.net.growth_rate=12 in the config but 24 in the file" in err
    assert "block1.layer.0.conv1.weight has 24 output channels" in err
    assert "add model.net.growth_rate=24" in err and not new.exists()
    # with the file's value named, it migrates (stem 2k = 48 from the file)
    assert main([str(old), str(new), "experiment=cifar10_densenet40", "model.net.growth_rate=24"]) == 0
    assert load_checkpoint_file(new)[META_KEY]["config"]["model"]["net"]["stem_channels"] == 48


def test_a_file_for_another_network_or_data_set_is_refused_before_anything_is_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = save_like_torch_playground(TPDenseNet3(num_classes=100), tmp_path / "DenseNet3.pth")
    assert main([str(old), str(tmp_path / "a.ckpt"), "experiment=cifar10_densenet40"]) == 2
    err = capsys.readouterr().err
    assert "model.net.num_classes=10 in the config but 100 in the file (fc.weight has 100 rows)" in err
    assert "data=<a data set with 100 classes>" in err
    assert main([str(old), str(tmp_path / "b.ckpt"), "experiment=cifar10_resnet18"]) == 2
    err = capsys.readouterr().err
    assert "Torch-Playground DenseNet3 state dict" in err and "models.cnn.nets.resnet18.resnet18" in err
    assert "experiment=cifar10_densenet40" in err
    bc = save_like_torch_playground(TPDenseNet(block_config=(2, 2, 2)), tmp_path / "DenseNet.pth")
    assert main([str(bc), str(tmp_path / "c.ckpt"), "experiment=cifar10_densenet40"]) == 2
    err = capsys.readouterr().err
    assert "model.net.bottleneck=False in the config but True in the file" in err
    assert "model.net.depth=40 in the config but 16 in the file" in err
    assert "model.net.reduction=1.0 in the config but 0.5 in the file" in err
    assert not any(tmp_path.glob("*.ckpt"))


@pytest.mark.parametrize(
    "network, build",
    [("SimpleMNIST", TPSimpleMNIST), ("SimpleModel", TPSimpleModel)],
)
def test_a_network_without_a_counterpart_is_named_and_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], network: str, build: Any
) -> None:
    old = save_like_torch_playground(build(), tmp_path / f"{network}.pth")
    assert detect(torch.load(old, weights_only=True)).name == "torch_playground_no_counterpart_v0"
    assert main([str(old), str(tmp_path / "new.ckpt"), "experiment=cifar10_resnet18"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert f"This is a Torch-Playground {network} state dict" in err
    assert "VisionCore has no equivalent network" in err and not (tmp_path / "new.ckpt").exists()


@pytest.mark.parametrize("network", ["SimpleDLA", "ShuffleNet", "AVModel"])
def test_every_tp_network_is_recognised_by_its_distinctive_keys(network: str) -> None:
    """Key lists of TP's other networks (from their code): the keys that only they have decide, none other."""
    keys = {
        "SimpleDLA": ["base.0.weight", "layer1.0.weight", "layer3.root.conv.weight", "linear.weight"],
        "ShuffleNet": ["conv1.weight", "bn1.weight", "fc.weight", "stage2.0.gconv1.weight"],
        "AVModel": ["network.0.weight", "network.5.weight", "network.11.weight", "network.23.weight"],
    }[network]
    with pytest.raises(LegacyCheckpointError, match=rf"Torch-Playground {network} state dict.*no equivalent"):
        detect({key: torch.zeros(1) for key in keys}).apply({key: torch.zeros(1) for key in keys}, None)


def test_a_dataparallel_prefix_is_stripped(tmp_path: Path) -> None:
    tp_net = trained_looking(TPResNet18(), seed=5)
    old = tmp_path / "ResNet18.pth"
    torch.save(nn.DataParallel(tp_net).state_dict(), old)
    module = hydra.utils.instantiate(compose_config(["experiment=cifar10_resnet18"]).model).eval()
    with pytest.warns(DeprecationWarning, match=r"legacy 'torch_playground_resnet18_v0'.*training\.migrate"):
        load_legacy_into(module, old)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(module(images), tp_net(images), rtol=1e-5, atol=1e-5)


def test_a_kuangliu_resnet_other_than_18_is_refused() -> None:
    weights = TPResNet18(num_blocks=(3, 4, 6, 3)).state_dict()
    with pytest.raises(LegacyCheckpointError, match=r"\[3, 4, 6, 3\] blocks per stage.*no counterpart"):
        detect(weights).apply(weights, None)


@pytest.mark.parametrize("writer", ["joblib.dump", "torch.save"])
def test_a_whole_pickled_network_imports_nothing_and_says_how_to_resave_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], writer: str
) -> None:
    """TP's debug `joblib.dump(self.net, 'model.pkl')`: the class `models.densenet3.DenseNet3` no longer
    exists (here it never did); opening the file must not import or run anything."""
    fake = types.ModuleType("models.densenet3")
    network = type("DenseNet3", (nn.Module,), {"__module__": "models.densenet3"})

    def build(self: nn.Module) -> None:
        nn.Module.__init__(self)
        self.conv1 = nn.Conv2d(3, 4, 3)

    network.__init__ = build
    fake.DenseNet3 = network
    sys.modules["models.densenet3"] = fake
    try:
        path = tmp_path / "model.pkl"
        (joblib.dump if writer == "joblib.dump" else torch.save)(network(), path)
    finally:
        del sys.modules["models.densenet3"]
    assert main([str(path), str(tmp_path / "new.ckpt"), "experiment=cifar10_densenet40"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        "models.densenet3" not in sys.modules
        and getattr(sys.modules.get("models"), "densenet3", None) is None
    )
    assert err.count("\n") == 0
    assert "is a whole pickled network (models.densenet3.DenseNet3), not a state dict" in err
    assert "nothing was imported" in err and "torch.save(net.state_dict(), 'x.pth')" in err
    assert not (tmp_path / "new.ckpt").exists()
    # Trusted, the file is unpickled (here its class cannot be imported); it is still no state dict.
    with pytest.warns(UserWarning, match="full unpickling"):
        assert (
            main(
                [str(path), str(tmp_path / "new.ckpt"), "experiment=cifar10_densenet40", "--trust-checkpoint"]
            )
            == 2
        )
    err = capsys.readouterr().err
    assert "(models.densenet3.DenseNet3), not a state dict" in err and "state dicts only" in err
    assert "models.densenet3" not in sys.modules and not (tmp_path / "new.ckpt").exists()


def test_the_imagined_formats_are_gone() -> None:
    assert not {"torch_playground_v0", "lightning_v0"} & set(MIGRATIONS)
    assert {
        "torch_playground_densenet3_v0",
        "torch_playground_densenet_bc_v0",
        "torch_playground_resnet18_v0",
        "torch_playground_no_counterpart_v0",
    } <= set(MIGRATIONS)
