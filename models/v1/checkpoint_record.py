"""What a v1 checkpoint records about its readouts, and the strict check when it is loaded again.

Readouts are tied to sessions and to the order of their units, so a checkpoint stores the session
names, each session's unit ids and readout parameter shapes, the dataset-config hash and the
simulator version; loading into a model built for other sessions or units is an error.
"""

from __future__ import annotations

import warnings
from typing import Any

from torch import nn

from training.toolkit.errors import UserError

RECORD_VERSION = 1


class SessionMismatchError(UserError):
    """A checkpoint whose readouts belong to other sessions or units than the configured model's."""


def record_of(module: nn.Module) -> dict[str, Any]:
    readouts = dict(getattr(module.net, "readouts", {}).items())
    sessions = []
    for spec in module.configs.sessions:
        readout = readouts.get(spec.name)
        shapes = {n: list(p.shape) for n, p in readout.named_parameters()} if readout is not None else {}
        sessions.append({"name": spec.name, "unit_ids": list(spec.unit_ids), "readout_shapes": shapes})
    simulate = module.configs.parent.get("simulate")
    return {
        "record_version": RECORD_VERSION,
        "sessions": sessions,
        "dataset_config_hash": module.configs.hash,
        "dataset_configs_path": str(module.configs.path),
        "dataset": module.configs.dataset,  # a simulated dataset's name (its configs computed, not read)
        "simulator": dict(simulate) if simulate else None,
        "simulator_version": _simulator_version() if simulate else None,
    }


def _simulator_version() -> str:
    from datamodules.v1.simulator import SIMULATOR_VERSION

    return SIMULATOR_VERSION


def check_record(module: nn.Module, record: dict[str, Any] | None) -> None:
    """Raise unless `record` describes the same sessions and unit lists as `module`; warn on a config change."""
    if record is None:
        raise SessionMismatchError(
            "The checkpoint has no v1 session record (checkpoint['v1']); it was not written by "
            "MultiDatasetModel. Convert an old file with `python -m training.migrate OLD NEW experiment=...`."
        )
    expected = {spec.name: list(spec.unit_ids) for spec in module.configs.sessions}
    stored = {entry["name"]: list(entry["unit_ids"]) for entry in record["sessions"]}
    if stored != expected:
        differences = sorted(
            name for name in expected.keys() | stored.keys() if expected.get(name) != stored.get(name)
        )
        raise SessionMismatchError(
            f"The checkpoint's readouts were trained on other sessions or units than "
            f"{module.configs.where} (max_datasets={module.hparams.max_datasets}) lists; they differ for "
            f"{differences[:6]}. Use the dataset configs the checkpoint was trained with "
            f"({record.get('dataset') or record.get('dataset_configs_path')}), or start new readouts with "
            "model.pretrained_checkpoint=... instead of ckpt_path."
        )
    if record.get("dataset_config_hash") != module.configs.hash:
        warnings.warn(
            f"The dataset configs changed since the checkpoint was written (hash {record.get('dataset_config_hash')}"
            f" -> {module.configs.hash}); sessions and units still match, so loading goes on.",
            stacklevel=2,
        )
