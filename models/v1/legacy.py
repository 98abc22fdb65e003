"""The seed's v1 checkpoint layouts (`PLCoreVisionModel`, `MultiDatasetPLCore`), migrated to `MultiDatasetModel`.

Both were Lightning checkpoints without VisionCore metadata whose network lived under `model.`;
compiled models added `_orig_mod.` after it. `MultiDatasetPLCore` indexed its per-session modules
by position (`model.readouts.3.…`, also `adapters`/`shifters`), `PLCoreVisionModel` had a single
`model.readout.…`. Positions become session names in the order of the target config's dataset
configs (`python -m training.migrate OLD NEW experiment=…` supplies it), and the file's readout
sizes are checked against those sessions' unit lists, so a file can only land on its own sessions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from training.toolkit.checkpoints import META_KEY
from training.toolkit.legacy import ConvertedCheckpoint, LegacyCheckpointError, Migration, register

COMPILED = "_orig_mod."
PER_SESSION = ("readouts", "adapters", "shifters")
INDEXED = re.compile(rf"^model\.(?:{re.escape(COMPILED)})?(?:{'|'.join(PER_SESSION)})\.(\d+)\.")
SINGLE_READOUT = re.compile(rf"^model\.(?:{re.escape(COMPILED)})?readout\.")
SINGULAR = {"readout": "readouts", "adapter": "adapters", "shifter": "shifters"}


def _weights(checkpoint: Mapping[str, Any]) -> Mapping[str, Any]:
    weights = checkpoint.get("state_dict")
    return weights if isinstance(weights, Mapping) and META_KEY not in checkpoint else {}


def _session_names(config: Mapping[str, Any] | None, old_format: str) -> list[str]:
    """Session order of the target config (the old file stored positions, not names)."""
    model = (config or {}).get("model") or {}
    if not (model.get("dataset_configs_path") or model.get("dataset")):
        raise LegacyCheckpointError(
            f"A {old_format} checkpoint indexes its readouts by position; name the experiment it was "
            "trained with so positions map to sessions: python -m training.migrate OLD NEW experiment=v1_..."
        )
    from datamodules.v1.dataset_configs import load_dataset_configs

    configs = load_dataset_configs(
        model.get("dataset_configs_path"),
        model.get("max_datasets"),
        model.get("sessions"),
        dataset=model.get("dataset"),
    )
    return configs.session_names


def _convert(checkpoint: Mapping[str, Any], rename: Any, old_format: str) -> ConvertedCheckpoint:
    weights = {}
    for key, value in _weights(checkpoint).items():
        if not key.startswith("model."):
            continue  # old metric buffers and the like; the current module has its own
        key = key[len("model.") :].replace(COMPILED, "")
        weights["net." + rename(key)] = value
    optimizer_states = checkpoint.get("optimizer_states") or []
    return ConvertedCheckpoint(
        state_dict=weights,
        epoch=int(checkpoint.get("epoch", 0)),
        global_step=int(checkpoint.get("global_step", 0)),
        optimizer_state=optimizer_states[0] if len(optimizer_states) == 1 else None,
        notes=[f"{old_format} layout, Lightning {checkpoint.get('pytorch-lightning_version', '?')}"],
    )


@register
class MultiDatasetPLCoreV0(Migration):
    """The seed's `MultiDatasetPLCore`: `model.` prefix, position-indexed readouts/adapters/shifters, `_orig_mod.`."""

    name = "v1_multidataset_plcore_v0"

    def matches(self, checkpoint: Mapping[str, Any]) -> bool:
        return any(INDEXED.match(key) for key in _weights(checkpoint))

    def apply(self, checkpoint: Mapping[str, Any], config: Mapping[str, Any] | None) -> ConvertedCheckpoint:
        names = _session_names(config, "MultiDatasetPLCore")
        positions = {int(m.group(1)) for key in _weights(checkpoint) if (m := INDEXED.match(key))}
        if max(positions) >= len(names):
            raise LegacyCheckpointError(
                f"The MultiDatasetPLCore checkpoint has readouts for {max(positions) + 1} sessions but the "
                f"target config lists {len(names)} ({names}); set model.max_datasets / the dataset configs "
                "it was trained with."
            )
        pattern = re.compile(rf"^({'|'.join(PER_SESSION)})\.(\d+)\.")

        def rename(key: str) -> str:
            return pattern.sub(lambda m: f"{m.group(1)}.{names[int(m.group(2))]}.", key)

        return _convert(checkpoint, rename, "MultiDatasetPLCore")


@register
class PLCoreVisionModelV0(Migration):
    """The seed's single-session `PLCoreVisionModel`: `model.core.…`, one `model.readout.…` (`adapter`, `shifter`)."""

    name = "v1_plcore_vision_model_v0"

    def matches(self, checkpoint: Mapping[str, Any]) -> bool:
        keys = list(_weights(checkpoint))
        return any(SINGLE_READOUT.match(key) for key in keys) and not any(INDEXED.match(key) for key in keys)

    def apply(self, checkpoint: Mapping[str, Any], config: Mapping[str, Any] | None) -> ConvertedCheckpoint:
        names = _session_names(config, "PLCoreVisionModel")
        if len(names) != 1:
            raise LegacyCheckpointError(
                f"A PLCoreVisionModel checkpoint has one readout, but the target config lists {len(names)} "
                "sessions; migrate it with a single-session experiment (e.g. experiment=v1_single)."
            )

        def rename(key: str) -> str:
            head, _, rest = key.partition(".")
            return f"{SINGULAR[head]}.{names[0]}.{rest}" if head in SINGULAR else key

        return _convert(checkpoint, rename, "PLCoreVisionModel")
