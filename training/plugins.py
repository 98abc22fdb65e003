"""Systems plug into the runner through the config: `plugins.<name>: <module>` lists a system's modules
that register what the runner needs from it (checkpoint migrations with `training.toolkit.legacy.register`,
OmegaConf resolvers its configs use). The runner imports them before the config resolves and names no
system itself. A config stored in a checkpoint may list only modules of VisionCore's own packages (like its
`_target_`s, see `training.toolkit.safe_load`), unless the user trusts the file.
"""

from __future__ import annotations

import importlib
from typing import Any

from training.toolkit.errors import ConfigValueError
from training.toolkit.safe_load import UnsafeCheckpointError, trusted

VISIONCORE_PACKAGES = ("models.", "datamodules.", "callbacks.", "training.")


def load_plugins(cfg: Any, stored_in: str | None = None) -> None:
    """Import every module `cfg.plugins` lists (idempotent: Python imports a module once). `stored_in`
    names the checkpoint the config came from, whose plugins must be VisionCore's own."""
    for name, module in (cfg.get("plugins") or {}).items():
        if not isinstance(module, str) or not module.strip():
            raise ConfigValueError(
                f"plugins.{name}={module!r} is not a module path: give a dotted module that registers the "
                f"system's migrations or resolvers, e.g. plugins.{name}=models.<system>.legacy."
            )
        if stored_in and not module.startswith(VISIONCORE_PACKAGES) and not trusted():
            raise UnsafeCheckpointError(
                f"Refusing the run config stored in {stored_in}: `plugins.{name}: {module}` would import code "
                f"outside VisionCore's packages ({', '.join(VISIONCORE_PACKAGES)}). If you trust the file, "
                "open it with trust_checkpoint=true."
            )
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if not err.name or not module.startswith(err.name):
                raise  # the module exists; something it imports is missing
            raise ConfigValueError(
                f"plugins.{name}={module} cannot be imported ({err}); fix the module path, put its package "
                "on PYTHONPATH, or remove the entry."
            ) from err
