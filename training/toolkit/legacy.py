"""Older checkpoint formats, recognised and converted explicitly into the current key layout.

Each format is a `Migration` registered in `MIGRATIONS`: `matches` recognises a loaded file and
`apply` returns its weights under today's key names (plus epoch, step, optimizer state, and the config
values the file's shapes fix, e.g. `model.net.stem_channels`, which `training.migrate` sets before it builds
the model). The weights are then loaded with `strict=True`, so a missing or renamed tensor is an error
instead of a silently random layer. Each system registers its predecessors' formats from its own module,
which its experiments list under `plugins` (training.plugins): the cnn system's Torch-Playground files in
`models/cnn/legacy.py`, v1's seed-project files in `models/v1/legacy.py`. This module names no system; it
also recognises a whole pickled network (`joblib.dump(net, 'model.pkl')`) without unpickling it.
"""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypedDict

import torch
from torch import nn

from training.toolkit.checkpoints import META_KEY, load_checkpoint_file
from training.toolkit.errors import CheckpointError, UserError
from training.toolkit.safe_load import UnsafeCheckpointError, trusted

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


class _Converted(TypedDict):
    state_dict: dict[str, torch.Tensor]  # keys as the current LightningModule names them (`net.…`)
    epoch: int
    global_step: int
    optimizer_state: dict[str, Any] | None  # the old `torch.optim` state_dict, positions as saved
    notes: list[str]  # facts worth keeping in the migrated file's metadata


class ConvertedCheckpoint(_Converted, total=False):
    """What a migration returns: the old file's content in the current layout."""

    # Dotted config key -> value that the file's shapes fix (e.g. `model.net.stem_channels: 24`), applied
    # to the target config before the model is built, so the migrated file's stored config rebuilds it.
    config_overrides: dict[str, Any]


class Migration(ABC):
    """One older checkpoint format: how to recognise a loaded file and convert it. `name` is versioned."""

    name: ClassVar[str]
    # Formats this one refines: when both match a file, the more specific one (this) is used.
    supersedes: ClassVar[tuple[str, ...]] = ()
    # True when `apply` reads the network's architecture from the file and checks it against the target
    # config: weights that still do not fit then come from a damaged file, not from another experiment.
    checks_architecture: ClassVar[bool] = False

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
# (training.plugins), e.g. v1's `models.v1.legacy`.
MIGRATIONS: dict[str, Migration] = {}


def register(migration: type[Migration]) -> type[Migration]:
    """Class decorator: make a format known to `detect`, `load_legacy_into` and `training.migrate`."""
    MIGRATIONS[migration.name] = migration()
    return migration


def strip_prefix(key: str, prefix: str) -> str:
    return key[len(prefix) :] if key.startswith(prefix) else key


# ---------------------------------------------------------------------------------------------------------
# Helpers for systems' migrations


def bare_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor] | None:
    """The file as a flat `name -> tensor` state dict (a DataParallel `module.` prefix stripped), or None."""
    if not checkpoint or META_KEY in checkpoint:
        return None
    if not all(isinstance(k, str) and torch.is_tensor(v) for k, v in checkpoint.items()):
        return None
    return {strip_prefix(k, DATA_PARALLEL_PREFIX): v for k, v in checkpoint.items()}


# ---------------------------------------------------------------------------------------------------------
# Whole pickled networks (`joblib.dump(net, 'model.pkl')`, `torch.save(net, path)`), read without running them.


class _PickledObject:
    """What an inert read of a pickle builds for every global it names: the name, call arguments and state."""

    path = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> _PickledObject:
        instance = super().__new__(cls)
        instance.args, instance.state, instance.items = args, None, {}
        return instance

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items[key] = value

    def append(self, value: Any) -> None:
        self.items[len(self.items)] = value

    def extend(self, values: Any) -> None:
        for value in values:
            self.append(value)


class _InertUnpickler(pickle.Unpickler):
    """Reads a pickle's structure only: every global becomes a `_PickledObject` type, so nothing is imported
    and no function or constructor of the file's runs; tensor storages are left out."""

    def find_class(self, module: str, name: str) -> type:
        return type(name, (_PickledObject,), {"path": f"{module}.{name}"})

    def persistent_load(self, pid: Any) -> None:
        return None


TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # the first pickle of a pre-1.6 (non-zip) `torch.save` file


def pickled_network_class(path: str | os.PathLike) -> str | None:
    """`module.Class` of the `nn.Module` pickled whole in `path` (a `torch.save(net)` or `joblib.dump(net)` file),
    found by reading the pickle inertly (`_InertUnpickler`), or None for anything else."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                member = next(name for name in archive.namelist() if name.endswith("data.pkl"))
                top = _InertUnpickler(archive.open(member)).load()
        else:
            with open(path, "rb") as handle:
                top = _InertUnpickler(handle).load()
                if top == TORCH_LEGACY_MAGIC:  # then the protocol, system info and the object itself
                    for _ in range(3):
                        top = _InertUnpickler(handle).load()
    except Exception:  # not a pickle, or one this reader cannot follow: not recognised
        return None
    if isinstance(top, _PickledObject) and top.path == "copyreg._reconstructor" and top.args:
        top = top.args[0]  # protocol 0/1: _reconstructor(cls, base, state)
    state = getattr(top, "state", None)
    if (
        isinstance(top, _PickledObject)
        and isinstance(state, dict)
        and {"_parameters", "_modules"} <= set(state)
    ):
        return top.path
    return None


def whole_network_message(path: str | os.PathLike, network: str) -> str:
    module = network.rpartition(".")[0]
    file = Path(path).name
    refusal = (
        "VisionCore migrates state dicts only, also with --trust-checkpoint"
        if trusted()
        else f"Reading it would import and run the code of `{module}`, so VisionCore does not unpickle it "
        "(nothing was imported)"
    )
    return (
        f"{path} is a whole pickled network ({network}), not a state dict: what `joblib.dump(net, '{file}')` or "
        f"`torch.save(net, ...)` writes (Torch-Playground's debug snippet, main.py:1-3). {refusal}. In the "
        f"environment that wrote it (the Torch-Playground checkout, where `{module}` imports), re-save its "
        f"weights as a state dict: `net = joblib.load('{file}')` (or `torch.load('{file}', weights_only=False)`), "
        "then `torch.save(net.state_dict(), 'x.pth')`, and migrate that: python -m training.migrate x.pth "
        "NEW.ckpt experiment=<the experiment it was trained with> (docs/migrating.md)."
    )


def read_legacy_file(path: str | os.PathLike) -> dict[str, Any]:
    """`load_checkpoint_file` (runs no code from the file), explaining a whole pickled network in one paragraph."""
    try:
        return load_checkpoint_file(path)
    except (UnsafeCheckpointError, CheckpointError):
        network = pickled_network_class(path)
        if network is None:
            raise
        raise LegacyCheckpointError(whole_network_message(path, network)) from None


# ---------------------------------------------------------------------------------------------------------


def known_formats(separator: str = "; ") -> str:
    """`name: what it converts` for every registered migration, by name (not by which plugin loaded first)."""
    return separator.join(f"{name}: {MIGRATIONS[name].summary()}" for name in sorted(MIGRATIONS))


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
    """Load an old-format file into a current module (strictly), warning that the file should be migrated.

    The module must already be built with the config values the file fixes (`config_overrides`, e.g.
    `model.net.stem_channels=24` for a Torch-Playground DenseNet3); `training.migrate` sets them itself.
    """
    checkpoint = read_legacy_file(path)
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
