"""Yates-Lab VisionCore checkpoints, written here in each layout that project wrote (stand-in weights with its
key names and shapes), migrate with `python -m training.migrate OLD NEW experiment=v1_multidataset`: the
file's own model config builds the network, the weights load strictly, readouts keep their names, and the
migrated network's output equals a plain computation of the seed's model on the original weights."""

from __future__ import annotations

import copy
import re
import sys
import types

import hydra
import pytest
import torch
import yaml

from models.v1.legacy import network_era
from models.v1.nets.network import SessionSpec
from models.v1.nets.visioncore import VisionCoreNet
from models.v1.transfer import load_pretrained_core, pretrained_weights
from tests.helpers import compose_config
from tests.models.v1.test_visioncore_early import _reference_a, seed_config_a
from tests.models.v1.test_visioncore_net import _reference, seed_config
from training.migrate import migrate
from training.toolkit.checkpoints import META_KEY
from training.toolkit.legacy import LegacyCheckpointError, detect, read_legacy_file

CONFIG = seed_config(channels=(6, 8), stem=3, kernel=6, hidden=5, grid=31)
CONFIG_A = seed_config_a(modulator=True)  # learned_res_small_gru, small
UNITS = {"Allen_2022-02-16": 5, "Logan_2020-03-06": 3}


def _seed_network(config: dict | None = None, era: str = "C") -> VisionCoreNet:
    """A stand-in for a trained seed network: the ported module with perturbed (trained-looking) weights."""
    torch.manual_seed(3)
    specs = [SessionSpec(name, n, list(range(n)), behavior_dim=42) for name, n in UNITS.items()]
    net = VisionCoreNet(
        specs, config or CONFIG, era=era
    )  # float32, as the seed trained (bf16-mixed keeps fp32 weights)
    with torch.no_grad():
        for name, value in net.named_parameters():
            if value.requires_grad and not name.endswith(".0.g"):
                value.add_(0.3 * torch.randn_like(value))
        for readout in net.readouts.values():
            readout.std.abs_().add_(0.5)
    return net


def _seed_keys(net: VisionCoreNet, prefix: str = "model.", single: bool = False) -> dict[str, torch.Tensor]:
    """The network's tensors under the seed's names: `model.` (+ `_orig_mod.`), shared parts at the top,
    per-session parts by position (`readouts.{i}`), or singular (`readout.`) for a one-session model."""
    state = {}
    for key, value in net.state_dict().items():
        key = key.removeprefix("core.")
        for index, name in enumerate(UNITS):
            key = re.sub(rf"^(readouts|adapters)\.{re.escape(name)}\.", rf"\g<1>.{index}.", key)
        if single:
            if re.match(r"^(readouts|adapters)\.1\.", key):
                continue
            key = re.sub(r"^(readout|adapter)s\.0\.", r"\g<1>.", key)
        state[prefix + key] = value
    return state


def _save_with_seed_global(checkpoint: dict, path, module: str, monkeypatch) -> None:
    """torch.save with `hyper_parameters['model_class']` pickled as a reference to `<module>.build_model`, the
    function the seed's modules stored; that module exists only while saving, as in the seed's environment."""
    fake = types.ModuleType(module)

    def build_model(*args, **kwargs):  # pragma: no cover - never called
        raise AssertionError("the seed's build_model must never run")

    build_model.__module__ = module
    build_model.__qualname__ = "build_model"
    fake.build_model = build_model
    checkpoint["hyper_parameters"]["model_class"] = build_model
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, module, fake)
        torch.save(checkpoint, path)


def _head(net, tmp_path, **hparams) -> dict:
    """training/pl_modules/multidataset_model.py at HEAD: model_config_dict stored, sessions in cfg_dir."""
    return {
        "epoch": 374,
        "global_step": 9000,
        "pytorch-lightning_version": "2.5.1",
        "state_dict": _seed_keys(net),
        "hyper_parameters": {
            "model_cfg": "experiments/model_configs/learned_resnet_concat_convgru_gaussian.yaml",
            "cfg_dir": str(tmp_path / "gone" / "multi_basic_120_long.yaml"),
            "lr": 1e-3,
            "wd": 1e-5,
            "max_ds": 2,
            "pretrained_checkpoint": None,
            "freeze_vision": False,
            "compile_model": True,
            "model_config_dict": CONFIG,
            **hparams,
        },
        "optimizer_states": [],
    }


def _outputs(new_path, stim, behavior) -> dict[str, torch.Tensor]:
    """Each stored readout's rates from the migrated file alone: its stored config builds the network."""
    new = torch.load(new_path, weights_only=True)
    net_config = new[META_KEY]["config"]["model"]["net"]
    net = VisionCoreNet(
        [],
        net_config["config"],
        stored_sessions=net_config["stored_sessions"],
        new_readouts=False,
        era=net_config["era"],
    )
    weights = {k.removeprefix("net."): v for k, v in new["state_dict"].items() if k.startswith("net.")}
    net.double().eval().load_state_dict(weights, strict=True)
    out = {}
    with torch.no_grad():
        for key in net.readouts:
            x = net.adapters[key](stim.flip(1).unsqueeze(1))
            out[key] = net.activation(net.readouts[key](net.core(x, behavior)))
    return out


def _check_outputs(net, new_path, names, reference=_reference) -> None:
    stim = torch.randn(2, 12, 24, 26, dtype=torch.float64)
    behavior = torch.randn(2, 42, dtype=torch.float64)
    got = _outputs(new_path, stim, behavior)
    assert list(got) == names
    for name, original in zip(names, UNITS, strict=False):
        expected = reference(copy.deepcopy(net).double(), stim, behavior, original)  # same values, float64
        torch.testing.assert_close(got[name], expected, rtol=0, atol=1e-10)


def test_a_head_checkpoint_migrates_and_matches_the_seeds_computation(tmp_path) -> None:
    net = _seed_network()
    old = tmp_path / "epoch=374-val_bps_overall=0.6395.ckpt"
    torch.save(_head(net, tmp_path), old)
    done = migrate(old, tmp_path / "new.ckpt", ["experiment=v1_multidataset"])
    assert done["format"] == "yates_visioncore_v1" and done["epoch"] == 374 and done["global_step"] == 9000
    # the session names are not in the file and its dataset config is not here: positions, said as such
    _check_outputs(net, tmp_path / "new.ckpt", ["position_0", "position_1"])


def test_session_names_come_from_the_dataset_config_the_file_names(tmp_path) -> None:
    net = _seed_network()
    parent = tmp_path / "multi_basic_120_long.yaml"
    parent.write_text(yaml.safe_dump({"sessions": [*UNITS, "Logan_2020-03-09"]}))
    old = tmp_path / "old.ckpt"
    torch.save(_head(net, tmp_path, cfg_dir=str(parent)), old)
    migrate(old, tmp_path / "new.ckpt", ["experiment=v1_multidataset"])
    _check_outputs(net, tmp_path / "new.ckpt", list(UNITS))


def test_a_compiled_checkpoint_migrates_with_the_config_given(tmp_path) -> None:
    """torch.compile on the whole network (91c47f9 … 037ab3a): `model._orig_mod.` keys, only the config's
    path stored; the user names the config (model=v1_visioncore with its values)."""
    net = _seed_network()
    checkpoint = _head(net, tmp_path)
    checkpoint["state_dict"] = _seed_keys(net, prefix="model._orig_mod.")
    del checkpoint["hyper_parameters"]["model_config_dict"]
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    with pytest.raises(LegacyCheckpointError, match="stores only the path of its model config"):
        migrate(old, tmp_path / "new.ckpt", ["experiment=v1_multidataset"])
    seed_yaml = (
        tmp_path / "learned_resnet_concat_convgru_gaussian.yaml"
    )  # the seed's YAML, as the user has it
    seed_yaml.write_text(yaml.safe_dump(CONFIG))
    migrate(
        old,
        tmp_path / "new.ckpt",
        ["experiment=v1_multidataset", "model=v1_visioncore", f"model.net.config={seed_yaml}"],
    )
    _check_outputs(net, tmp_path / "new.ckpt", ["position_0", "position_1"])
    small = [
        "model.net.config.frontend.params.kernel_size=6",
        "model.net.config.convnet.params.channels=[6,8]",
        "model.net.config.convnet.params.stem_config.out_channels=3",
        "model.net.config.recurrent.params.hidden_dim=5",
        "model.net.config.adapter.params.grid_size=31",
        "+model.net.config.modulator.params={behavior_dim: 42}",
        "model.net.config.modulator.type=concat",
    ]

    # the migrated file starts a frozen-core transfer: its shared core, new readouts for VisionCore's sessions
    cfg = compose_config(
        ["experiment=v1_multidataset", "model=v1_visioncore", *small, "model.freeze_vision=true"]
    )
    transfer = hydra.utils.instantiate(cfg.model, pretrained_checkpoint=str(tmp_path / "new.ckpt"))
    load_pretrained_core(transfer, pretrained_weights(tmp_path / "new.ckpt"), tmp_path / "new.ckpt")
    expected = {
        k.removeprefix("core."): v.float() for k, v in net.state_dict().items() if k.startswith("core.")
    }
    for key, value in transfer.net.core.state_dict().items():
        assert torch.equal(value, expected[key]), key
    assert set(transfer.net.readouts) == set(transfer.session_names)  # new readouts, by the data's names


def test_multidataset_plcore_names_readouts_by_its_dataset_configs_and_never_imports_its_model_class(
    tmp_path, monkeypatch
) -> None:
    """models/lightning/multidataset.py: `model_config`, the per-session `dataset_configs` and a pickled
    `model_class=build_model` of a package VisionCore's own `models` shadows."""
    net = _seed_network(CONFIG_A, era="A")  # these modules predate 2025-10-13: the era-A network code
    checkpoint = {
        "epoch": 12,
        "global_step": 480,
        "state_dict": _seed_keys(net),
        "hyper_parameters": {
            "model_config": CONFIG_A,
            "dataset_configs": [{"session": name, "cids": list(range(n))} for name, n in UNITS.items()],
        },
    }
    old = tmp_path / "old.ckpt"
    _save_with_seed_global(checkpoint, old, "models.build", monkeypatch)
    loaded = read_legacy_file(old)  # inert: the reference is a placeholder, nothing imported
    assert "build_model" in repr(loaded["hyper_parameters"]["model_class"])
    done = migrate(old, tmp_path / "new.ckpt", ["experiment=v1_multidataset"])
    assert done["config_overrides"]["model.net"]["era"] == "A"
    _check_outputs(net, tmp_path / "new.ckpt", list(UNITS), _reference_a)


def test_plcore_vision_model_has_one_readout(tmp_path) -> None:
    """models/lightning/core.py: a single `adapter` / `readout`, `model_config` stored."""
    net = _seed_network()
    checkpoint = {
        "epoch": 1,
        "global_step": 10,
        "state_dict": _seed_keys(net, single=True),
        "hyper_parameters": {"model_config": CONFIG, "cids": list(range(5))},
    }
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    migrate(old, tmp_path / "new.ckpt", ["experiment=v1_single"])
    _check_outputs(net, tmp_path / "new.ckpt", ["position_0"])


@pytest.mark.parametrize(
    ("keys", "era"),
    [
        ({"model.frontend.temporal_conv.weight": (4, 1, 16)}, "A"),
        ({"model.convnet.layers.0.shortcut.0.weight": (8, 4, 1, 1, 1)}, "A"),
        ({"model.frontend.temporal_conv.conv.weight": (4, 1, 16)}, "B"),  # the 1-D StandardConv
        (
            {
                "model.convnet.layers.0.main_block.components.conv.conv.parametrizations.weight.original0": (
                    8,
                    1,
                    1,
                    1,
                    1,
                )
            },
            "B",
        ),
        ({"model.recurrent.cell.layer_norm.weight": (384,)}, "B"),
        ({"model.frontend.temporal_conv.conv.weight": (4, 1, 16, 1, 1)}, "C"),
        ({"model.recurrent.cells.0.update_gate.weight": (4, 8, 3, 3)}, "C"),
    ],
)
def test_the_key_names_tell_which_network_code_wrote_a_file(keys, era) -> None:
    assert network_era({k.removeprefix("model."): torch.zeros(shape) for k, shape in keys.items()}) == era


def test_the_first_day_of_era_b_is_refused_by_name() -> None:
    """Norms with γ/β (era B) but the Sequential shortcut of before 5e693f2."""
    state = {
        "model.convnet.layers.0.shortcut.0.weight": torch.zeros(8, 4, 1, 1, 1),
        "model.convnet.layers.0.main_block.components.norm.gamma": torch.zeros(8),
        "model.readouts.0.bias": torch.zeros(3),
    }
    checkpoint = {"state_dict": state, "hyper_parameters": {}}
    migration = detect(checkpoint)
    assert migration.name == "yates_visioncore_v1"
    with pytest.raises(LegacyCheckpointError, match="before 5e693f2"):
        migration.apply(checkpoint, None)


def test_the_migrated_model_runs_on_other_sessions_only_when_told_how(tmp_path) -> None:
    net = _seed_network()
    stored = [{"name": name, "num_units": n} for name, n in UNITS.items()]
    specs = [SessionSpec("vc_s01", 5, list(range(5)), behavior_dim=42)]
    locked = VisionCoreNet(specs, CONFIG, stored_sessions=stored, new_readouts=False)
    stim = torch.randn(1, 12, 24, 26)
    with pytest.raises(Exception, match=r"No readout reads session\(s\) \['vc_s01'\]"):
        locked({"vc_s01": {"stim": stim, "behavior": torch.randn(1, 42)}})
    mapped = VisionCoreNet(
        specs, CONFIG, stored_sessions=stored, session_map={"vc_s01": "Allen_2022-02-16"}, new_readouts=False
    )
    assert mapped({"vc_s01": {"stim": stim, "behavior": torch.randn(1, 42)}})["vc_s01"].shape == (1, 5)
    assert "vc_s01" not in mapped.readouts and set(mapped.readouts) == set(UNITS)
    del net
