"""Open a checkpoint without running code from it.

Every door (resume, `task=test|validate|predict|export|sample`, `training.migrate`, pretrained cores,
pipeline stages, feature extractors) reads files through `safe_torch_load`:

- `torch.load(weights_only=True)`: tensors, plain containers, numbers and strings, nothing else.
  VisionCore writes only such types (`plain_checkpoint` below), so its own files always load this way.
- A global whose code no longer exists anywhere (a class or function of a predecessor project pickled
  into `hyper_parameters`) is read as an inert `VanishedGlobal` placeholder: nothing is imported and
  nothing runs, and the weights are kept.
- A global whose code does exist here (`os.system`, `builtins.exec`, an OmegaConf node, a numpy array)
  would run that code while unpickling, so the file is refused with one paragraph naming the file, the
  type and the opt-in, unless the user trusts the file (`trust_checkpoint=true`, which sets
  `VISIONCORE_TRUST_CHECKPOINT=1` for the run and the processes it starts).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import pickle
import sys
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import PurePath
from typing import Any

import numpy as np
import torch

from training.toolkit.errors import UserError

TRUST_ENV = "VISIONCORE_TRUST_CHECKPOINT"

# The one allowlist of globals beyond torch's own weights-only set. Empty on purpose: our checkpoints
# are made of plain types; add here (with the reason) only what cannot be written plainly.
SAFE_GLOBALS: list[Any] = []


class UnsafeCheckpointError(UserError):
    """A checkpoint that would run code when opened, and the user has not said they trust it."""


def trusted() -> bool:
    return os.environ.get(TRUST_ENV, "").lower() in ("1", "true", "yes")


@contextmanager
def trust_checkpoints(enabled: bool) -> Iterator[None]:
    """`trust_checkpoint=true` for the duration of a task (inherited by the processes it spawns)."""
    previous = os.environ.get(TRUST_ENV)
    if enabled:
        os.environ[TRUST_ENV] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(TRUST_ENV, None)
        else:
            os.environ[TRUST_ENV] = previous


class VanishedGlobal:
    """Stands for a pickled class or function whose code no longer exists: records what the file said
    (`vanished_global`, call `args`, `state`) and does nothing else."""

    vanished_global = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> VanishedGlobal:
        instance = super().__new__(cls)
        instance.args, instance.state = args, None
        return instance

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<vanished {self.vanished_global}>"


def _placeholder(full_path: str) -> tuple[type, str]:
    module, _, name = full_path.rpartition(".")
    placeholder = type(name, (VanishedGlobal,), {"__module__": module, "vanished_global": full_path})
    return placeholder, full_path


def code_exists(full_path: str) -> bool:
    """Whether `module.name` names code importable here, found without importing anything new."""
    module, _, name = full_path.rpartition(".")
    if module in sys.modules:
        return hasattr(sys.modules[module], name.split(".")[0])
    parts = module.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])  # a top-level lookup imports nothing
    except (ImportError, ValueError):
        return False
    for depth in range(1, len(parts)):
        if spec is None or not spec.submodule_search_locations:
            return False
        prefix = ".".join(parts[: depth + 1])
        spec = importlib.machinery.PathFinder.find_spec(prefix, list(spec.submodule_search_locations))
    return spec is not None


def unsafe_globals(path: str | os.PathLike) -> list[str]:
    """The globals a zip-format checkpoint needs beyond the weights-only set (empty for legacy formats,
    whose refusal then names what `torch.load` reported)."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except (RuntimeError, ValueError, OSError):
        return []


def refusal(path: str | os.PathLike, wanted: list[str], reason: str) -> str:
    names = ", ".join(f"`{name}`" for name in wanted[:5]) or reason
    return (
        f"Refusing to open {path}: unpickling it would build {names}, which runs code that exists on this "
        "machine, so the file could do anything when opened. VisionCore's own checkpoints never need "
        "this. If you trust the file (you wrote it, or a colleague you trust did), open it with "
        "trust_checkpoint=true (python -m training.run … trust_checkpoint=true; python -m "
        "training.migrate … --trust-checkpoint)."
    )


def safe_torch_load(path: str | os.PathLike, map_location: Any = "cpu", mmap: bool = False) -> Any:
    """`torch.load` that runs no code from the file (see the module docstring); `mmap`: tensors are mapped,
    not read (a zip-format file only), for callers that need only the file's plain entries."""
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        blocked = err
    wanted = unsafe_globals(path)
    if trusted():
        warnings.warn(
            f"Opening {path} with full unpickling (trust_checkpoint=true): it may run code "
            f"({', '.join(wanted) or 'unknown types'}).",
            stacklevel=2,
        )
        return torch.load(path, map_location=map_location, weights_only=False)
    present = [name for name in wanted if code_exists(name)]
    if present or not wanted:
        raise UnsafeCheckpointError(refusal(path, present, str(blocked).splitlines()[0][:300]))
    warnings.warn(
        f"{path} refers to code that no longer exists ({', '.join(wanted)}); those entries are read as "
        "inert placeholders and the weights are kept.",
        stacklevel=2,
    )
    with torch.serialization.safe_globals([*SAFE_GLOBALS, *(_placeholder(name) for name in wanted)]):
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)


# A checkpoint's stored run config is built again with `hydra.utils.instantiate`, which calls whatever its
# `_target_`s name: only these packages' classes and functions may be named there without trust.
CONFIG_TARGET_PREFIXES = (
    "models.",
    "datamodules.",
    "training.",
    "callbacks.",
    "torch.optim.",
    "torchmetrics.",
    "torchvision.",
    "diffusers.",
    "pytorch_lightning.callbacks.",
    "pytorch_lightning.loggers.",
    "pytorch_lightning.strategies.",
    "pytorch_lightning.profilers.",
    "pytorch_lightning.Trainer",
)


def check_config_targets(config: Any, source: str, key: str = "") -> None:
    """Refuse a stored config whose `_target_` would call code outside `CONFIG_TARGET_PREFIXES` (e.g.
    `builtins.exec`), unless the user trusts the file; `source` names the file for the message."""
    if trusted():
        return
    if isinstance(config, Mapping):
        target = config.get("_target_")
        if isinstance(target, str) and not target.startswith(CONFIG_TARGET_PREFIXES):
            raise UnsafeCheckpointError(
                f"Refusing the run config stored in {source}: `{key or '<root>'}._target_: {target}` would call "
                f"code outside VisionCore and the libraries its configs use ({', '.join(CONFIG_TARGET_PREFIXES)}). "
                "If you trust the file, open it with trust_checkpoint=true."
            )
        for name, item in config.items():
            check_config_targets(item, source, f"{key}.{name}" if key else str(name))
    elif isinstance(config, list | tuple):
        for index, item in enumerate(config):
            check_config_targets(item, source, f"{key}[{index}]")


def plain_checkpoint(value: Any) -> Any:
    """`value` made of types `torch.load(weights_only=True)` reads: OmegaConf containers (Lightning's
    hyper-parameters), numpy values and paths become plain containers, tensors and scalars."""
    from omegaconf import Container, OmegaConf  # here: keeps `training.toolkit.safe_load` light to import

    if isinstance(value, Container):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        items = {key: plain_checkpoint(item) for key, item in value.items()}
        if type(value) in (dict, OrderedDict) and all(items[key] is value[key] for key in value):
            return value  # already plain (state dicts keep their `_metadata`)
        return OrderedDict(items) if isinstance(value, OrderedDict) else items
    if isinstance(value, list | tuple) and not hasattr(value, "_fields"):
        return type(value)(plain_checkpoint(item) for item in value)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, PurePath):
        return str(value)
    return value
