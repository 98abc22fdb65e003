"""Older checkpoint formats, recognised and converted explicitly into the current key layout.

Each format is a `Migration` registered in `MIGRATIONS`: `matches` recognises a loaded file and
`apply` returns its weights under today's key names (plus epoch, step and optimizer state). The
weights are then loaded with `strict=True`, so a missing or renamed tensor is an error instead of a
silently random layer. A system with its own old format (e.g. v1's `PLCoreVisionModel` or
`MultiDatasetPLCore` files) adds a `@register`-ed subclass; the mechanism stays as it is.
"""

from __future__ import annotations

import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, TypedDict

import torch
from torch import nn

from training.toolkit.checkpoints import META_KEY, load_checkpoint_file
from training.toolkit.errors import UserError

NET_PREFIX = "net."  # where every current LightningModule keeps its network
DATA_PARALLEL_PREFIX = "module."


class LegacyCheckpointError(UserError):
    """A checkpoint that no migration recognises, or whose weights do not fit the model."""


class WeightsMismatchError(LegacyCheckpointError):
    """Converted weights whose keys or shapes differ from the model's; lists the differences."""

    def __init__(
        self, source: str, model: str, missing: list[str], unexpected: list[str], mismatched: list[str]
    ) -> None:
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        parts = [
            f"{len(keys)} {what}: {', '.join(keys[:4])}{', …' if len(keys) > 4 else ''}"
            for what, keys in (
                ("missing keys (the model has them, the file does not)", missing),
                ("unexpected keys (the file has them, the model does not)", unexpected),
                ("shape mismatches (file vs model)", mismatched),
            )
            if keys
        ]
        super().__init__(f"The weights of {source} do not fit {model}: {'; '.join(parts)}.")


class ConvertedCheckpoint(TypedDict):
    """What a migration returns: the old file's content in the current layout."""

    state_dict: dict[str, torch.Tensor]  # keys as the current LightningModule names them (`net.…`)
    epoch: int
    global_step: int
    optimizer_state: dict[str, Any] | None  # the old `torch.optim` state_dict, positions as saved
    notes: list[str]  # facts worth keeping in the migrated file's metadata


class Migration(ABC):
    """One older checkpoint format: how to recognise a loaded file and convert it. `name` is versioned."""

    name: ClassVar[str]
    # Formats this one refines: when both match a file, the more specific one (this) is used.
    supersedes: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def matches(self, checkpoint: Mapping[str, Any]) -> bool:
        """True when `checkpoint` (a loaded dict) is in this format."""

    @abstractmethod
    def apply(self, checkpoint: Mapping[str, Any], config: Mapping[str, Any] | None) -> ConvertedCheckpoint:
        """The file's content in the current layout; `config` is the resolved target config, if known."""

    @classmethod
    def summary(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0]


# Every known format. A system registers its own from a module its config lists under `plugins`
# (training.plugins), e.g. v1's `models.v1.legacy`: this module names no system.
MIGRATIONS: dict[str, Migration] = {}


def register(migration: type[Migration]) -> type[Migration]:
    """Class decorator: make a format known to `detect`, `load_legacy_into` and `training.migrate`."""
    MIGRATIONS[migration.name] = migration()
    return migration


def strip_prefix(key: str, prefix: str) -> str:
    return key[len(prefix) :] if key.startswith(prefix) else key


@register
class TorchPlaygroundV0(Migration):
    """Plain `torch.save({'epoch', 'model_state_dict', 'optimizer_state_dict', 'loss'})` of a bare network.

    Written by the pre-Lightning training scripts. A DataParallel `module.` prefix is stripped and the
    network's keys move under `net.`.
    """

    name = "torch_playground_v0"

    def matches(self, checkpoint: Mapping[str, Any]) -> bool:
        return isinstance(checkpoint.get("model_state_dict"), Mapping) and "state_dict" not in checkpoint

    def apply(self, checkpoint: Mapping[str, Any], config: Mapping[str, Any] | None) -> ConvertedCheckpoint:
        weights = {
            NET_PREFIX + strip_prefix(k, DATA_PARALLEL_PREFIX): v
            for k, v in checkpoint["model_state_dict"].items()
        }
        notes = (
            [f"old loss {float(checkpoint['loss']):.6g}"]
            if isinstance(checkpoint.get("loss"), float | int)
            else []
        )
        return ConvertedCheckpoint(
            state_dict=weights,
            epoch=int(checkpoint.get("epoch", 0)),
            global_step=int(checkpoint.get("global_step", 0)),
            optimizer_state=checkpoint.get("optimizer_state_dict"),
            notes=notes,
        )


@register
class LightningV0(Migration):
    """Lightning checkpoint of the older `LitClassifier`: weights under `model.`, no VisionCore metadata.

    Its `model.` keys (and a DataParallel `module.` prefix inside them) move under `net.`; other keys are
    kept as they are, so strict loading reports anything the current module does not have.
    """

    name = "lightning_v0"

    def matches(self, checkpoint: Mapping[str, Any]) -> bool:
        weights = checkpoint.get("state_dict")
        return (
            isinstance(weights, Mapping)
            and META_KEY not in checkpoint
            and any(k.startswith("model.") for k in weights)
            and not any(k.startswith(NET_PREFIX) for k in weights)
        )

    def apply(self, checkpoint: Mapping[str, Any], config: Mapping[str, Any] | None) -> ConvertedCheckpoint:
        weights = {
            (
                NET_PREFIX + strip_prefix(k[len("model.") :], DATA_PARALLEL_PREFIX)
                if k.startswith("model.")
                else k
            ): v
            for k, v in checkpoint["state_dict"].items()
        }
        optimizer_states = checkpoint.get("optimizer_states") or []
        hparams = checkpoint.get("hyper_parameters") or {}
        old_class = hparams.get("_class_path") or hparams.get("class_name") or checkpoint.get("hparams_name")
        notes = [f"Lightning {checkpoint.get('pytorch-lightning_version', '?')}"]
        notes += [f"old class/hparams name {old_class}"] if old_class else []
        return ConvertedCheckpoint(
            state_dict=weights,
            epoch=int(checkpoint.get("epoch", 0)),
            global_step=int(checkpoint.get("global_step", 0)),
            optimizer_state=optimizer_states[0] if len(optimizer_states) == 1 else None,
            notes=notes,
        )


def known_formats(separator: str = "; ") -> str:
    """`name: what it converts` for every registered migration."""
    return separator.join(f"{name}: {migration.summary()}" for name, migration in MIGRATIONS.items())


def detect(checkpoint: Mapping[str, Any], source: str = "the checkpoint") -> Migration:
    """The one migration that recognises `checkpoint`, or a clear error naming the known formats."""
    found = [migration for migration in MIGRATIONS.values() if migration.matches(checkpoint)]
    superseded = {name for migration in found for name in migration.supersedes}
    found = [migration for migration in found if migration.name not in superseded]
    if len(found) == 1:
        return found[0]
    if META_KEY in checkpoint:
        raise LegacyCheckpointError(
            f"{source} is already a current VisionCore checkpoint; load it directly "
            "(e.g. task=test ckpt_path=...), no migration is needed."
        )
    if found:
        raise LegacyCheckpointError(
            f"{source} matches several legacy formats ({', '.join(m.name for m in found)}); "
            "make their `matches` tests exclusive in training/toolkit/legacy.py."
        )
    keys = sorted(map(str, checkpoint))[:8]
    raise LegacyCheckpointError(
        f"{source} is in no known checkpoint format (top-level keys: {', '.join(keys)}). "
        f"Known formats: {known_formats()}. Add a Migration for it in training/toolkit/legacy.py."
    )


def load_weights_strictly(module: nn.Module, weights: Mapping[str, torch.Tensor], source: str) -> None:
    """`module.load_state_dict(weights, strict=True)`, first listing any key or shape difference readably."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    mismatched = [
        f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in weights and tuple(weights[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or mismatched:
        raise WeightsMismatchError(source, type(module).__name__, missing, unexpected, mismatched)
    module.load_state_dict(weights, strict=True)


def load_legacy_into(module: nn.Module, path: str | os.PathLike) -> ConvertedCheckpoint:
    """Load an old-format file into a current module (strictly), warning that the file should be migrated."""
    checkpoint = load_checkpoint_file(path)
    migration = detect(checkpoint, str(path))
    warnings.warn(
        f"{path} is a legacy '{migration.name}' checkpoint, converted in memory on every load. Convert "
        f"it once: python -m training.migrate {path} NEW.ckpt experiment=<its experiment>",
        DeprecationWarning,
        stacklevel=2,
    )
    converted = migration.apply(checkpoint, None)
    load_weights_strictly(module, converted["state_dict"], f"{path} ({migration.name})")
    return converted
