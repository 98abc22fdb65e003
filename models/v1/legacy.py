"""Checkpoints of the Yates-Lab VisionCore (the predecessor of `v1`), migrated to `MultiDatasetModel` with the
network the file's own model config describes (`models.v1.nets.visioncore.VisionCoreNet`).

The layouts it wrote (github.com/Yates-Lab/VisionCore), all Lightning checkpoints with the network under `model.`:

- `training/pl_modules/multidataset_model.py` `MultiDatasetModel` (2025-10-08 onward): per-session
  `adapters.{i}` / `readouts.{i}`; since 2025-10-22 (fc9080f) the model config is stored as
  `hyper_parameters['model_config_dict']`, before only its path (`model_cfg`). Session names are not in the
  file: position i is `sessions[i]` of the dataset config `hyper_parameters['cfg_dir']` names (read when
  that file is at hand).
- the same with `torch.compile` on the whole network (91c47f9 … 037ab3a): keys `model._orig_mod.…`.
- the older `models/lightning/` modules (91c47f9 and before): `MultiDatasetPLCore` stores `model_config` and the
  list of per-session `dataset_configs` (their `session` names, position = readout index);
  `PLCoreVisionModel` stores `model_config` and has one `adapter` / `readout`. Both pickled
  `model_class=build_model`, a function of a package that VisionCore's own `models` shadows: read as an
  inert placeholder (training.toolkit.safe_load), never imported.

The network's code changed three times while these were written; the key names tell which (see
`network_era`). Era A (2025-10-08 … 10-13, the `learned_res_small*` and `core_res*` configs and the
`models/lightning/` modules' time), era B (10-13 … 10-20, from 10-14) and era C (10-20 onward, the
`learned_resnet_*` / `learned_dense_*` configs) are ported; the first day of era B is refused by name.

Readouts keep where they came from: the session name the file or its dataset config records, else
`position_{i}`. The migrated model holds only those readouts (`model.net.new_readouts=false`);
fit or evaluate it on other sessions with `model.net.session_map={vc_session: stored_name}` (unit counts
checked) or `model.net.new_readouts=true` for fresh readouts. Nothing is matched by position.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from models.v1.nets.visioncore.network import read_seed_config
from training.toolkit.checkpoints import META_KEY
from training.toolkit.legacy import ConvertedCheckpoint, LegacyCheckpointError, Migration, register

COMPILED = "_orig_mod."
INDEXED = re.compile(r"^(adapters|readouts|spike_history)\.(\d+)\.")
SINGULAR = re.compile(r"^(adapter|readout)\.")
SHARED = ("frontend.", "convnet.", "modulator.", "recurrent.")
NETWORK = "models.v1.nets.visioncore.VisionCoreNet"
ERA_A = re.compile(r"^frontend\.temporal_conv\.weight$|\.shortcut\.0\.weight$|\.cell\.conv_[xh]\.")
ERA_B = re.compile(r"\.parametrizations\.weight\.original[01]$|\.cell\.layer_norm\.|(^|\.)h0$")


def _weights(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """The network's tensors with `model.` (and `_orig_mod.`) removed."""
    state = checkpoint.get("state_dict")
    if not isinstance(state, Mapping) or META_KEY in checkpoint:
        return {}
    weights = {}
    for key, value in state.items():
        if isinstance(key, str) and key.startswith("model."):
            key = key[len("model.") :]
            weights[key[len(COMPILED) :] if key.startswith(COMPILED) else key] = value
    return weights


def network_era(weights: Mapping[str, Any]) -> str:
    """Which of the seed's network codes wrote these keys: "A" (2025-10-08 … 10-13: a Conv1d front end,
    `shortcut.0`, `cell.conv_x`, RMS norms without parameters), "B" (10-13 … 10-20: norms with γ/β,
    torch's weight norm, a 1-D `temporal_conv.conv`, GRU layer norms) or "C" (10-20 onward)."""
    keys = list(weights)
    one_d_conv = getattr(weights.get("frontend.temporal_conv.conv.weight"), "ndim", 5) == 3
    if one_d_conv or any(ERA_B.search(k) for k in keys):
        return "B"
    if any(ERA_A.search(k) for k in keys):
        return "B" if any(k.endswith("components.norm.gamma") for k in keys) else "A"
    return "C"


def _dataset_config_sessions(hparams: Mapping[str, Any]) -> list[str] | None:
    """`sessions[:max_ds]` of the parent dataset config the file names (`cfg_dir`), when it is readable here."""
    path = hparams.get("cfg_dir")
    if not isinstance(path, str) or not Path(path).is_file():
        return None
    parent = yaml.safe_load(Path(path).read_text()) or {}
    sessions = parent.get("sessions")
    if not isinstance(sessions, list):
        return None
    return [str(s) for s in sessions[: hparams.get("max_ds") or None]]


def _recorded_sessions(hparams: Mapping[str, Any]) -> list[str] | None:
    """Session names in readout order, where the file or its dataset config records them."""
    configs = hparams.get("dataset_configs")
    if isinstance(configs, list) and configs:
        names = []
        for config in configs:
            config = config if isinstance(config, Mapping) else {}
            source = config.get("_config_path")
            names.append(str(config.get("session") or (Path(source).stem if source else "")))
        return names if all(names) else None
    return _dataset_config_sessions(hparams)


@register
class YatesVisionCore(Migration):
    """Yates-Lab VisionCore: MultiDatasetModel (also torch.compile'd: `model._orig_mod.`), MultiDatasetPLCore, PLCoreVisionModel."""

    name = "yates_visioncore_v1"
    checks_architecture = True

    def matches(self, checkpoint: Mapping[str, Any]) -> bool:
        keys = list(_weights(checkpoint))
        return any(INDEXED.match(k) or SINGULAR.match(k) for k in keys) and any(
            k.startswith(SHARED) for k in keys
        )

    def apply(self, checkpoint: Mapping[str, Any], config: Mapping[str, Any] | None) -> ConvertedCheckpoint:
        hparams = checkpoint.get("hyper_parameters") or {}
        weights = _weights(checkpoint)
        era = network_era(weights)  # read from the keys: a file cannot be built with the other era's code
        mixed = any(k.endswith(".shortcut.0.weight") or k == "frontend.temporal_conv.weight" for k in weights)
        if era == "B" and mixed:
            raise LegacyCheckpointError(
                "This Yates-Lab VisionCore checkpoint was written in the first day of its network code of 2025-10-13 "
                "… 10-20 (norms with γ/β but a Sequential shortcut or a Conv1d front end: before 5e693f2 / 8d81a39); "
                "that day's code is not ported (the rest of era B, and eras A and C, are)."
            )
        model_config = hparams.get("model_config_dict") or hparams.get("model_config")
        if not isinstance(model_config, Mapping):
            target = ((config or {}).get("model") or {}).get("net") or {}
            model_config = target.get("config") if target.get("_target_") == NETWORK else None
            if isinstance(model_config, str):  # the path of the seed's YAML: stored as its content
                model_config = read_seed_config(model_config)
        if not isinstance(model_config, Mapping):
            raise LegacyCheckpointError(
                f"The file stores only the path of its model config ({hparams.get('model_cfg')!r}), not the config. "
                "Migrate it with model=v1_visioncore model.net.config=/path/to/that.yaml (the seed's "
                "experiments/model_configs/ at the commit it was trained with), or with the values of "
                "conf/model/v1_visioncore.yaml overridden where they differ."
            )
        units = self._units(weights)
        names = _recorded_sessions(hparams)
        if names is None or len(names) != len(units):
            names = [f"position_{i}" for i in range(len(units))]
        renamed = {}
        for key, value in weights.items():
            if key.startswith(SHARED):
                key = "core." + key
            elif match := INDEXED.match(key):
                key = f"{match.group(1)}.{names[int(match.group(2))]}.{key[match.end() :]}"
            elif match := SINGULAR.match(key):
                key = f"{match.group(1)}s.{names[0]}.{key[match.end() :]}"
            else:
                continue  # baselines / spike-history heads of configs not ported: the strict load names them
            renamed["net." + key] = value
        net = {
            "_target_": NETWORK,
            "_partial_": True,
            "config": _plain(model_config),
            "stored_sessions": [{"name": n, "num_units": u} for n, u in zip(names, units, strict=True)],
            "session_map": {},
            "new_readouts": False,
            "era": era,
        }
        return ConvertedCheckpoint(
            state_dict=renamed,
            epoch=int(checkpoint.get("epoch", 0)),
            global_step=int(checkpoint.get("global_step", 0)),
            optimizer_state=None,  # the seed ordered its parameters differently: positions would mismatch
            notes=[
                f"Yates-Lab VisionCore, Lightning {checkpoint.get('pytorch-lightning_version', '?')}; readouts: "
                + ", ".join(names)
            ],
            config_overrides={
                "model.net": net,
                "model.regularization": {"readout_l1": 0.0, "core_smoothness": 0.0, "shifter": 0.0},
            },
        )

    @staticmethod
    def _units(weights: Mapping[str, Any]) -> list[int]:
        """Units per stored readout, in position order (`readouts.{i}` or the single `readout`)."""
        counts: dict[int, int] = {}
        for key, value in weights.items():
            match = INDEXED.match(key)
            if match and match.group(1) == "readouts" and key.endswith(".bias"):
                counts[int(match.group(2))] = int(value.shape[0])
            elif key == "readout.bias":
                counts[0] = int(value.shape[0])
        if sorted(counts) != list(range(len(counts))):
            raise LegacyCheckpointError(
                f"The file's readouts are numbered {sorted(counts)}; some are missing."
            )
        return [counts[i] for i in range(len(counts))]


def _plain(value: Any) -> Any:
    """A config of plain dicts and lists (the file may hold OmegaConf-free but nested tuples)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
