"""Systems plug into the runner through the config: `plugins.<name>: <module>` lists a system's modules
that register what the runner needs from it (checkpoint migrations with `training.toolkit.legacy.register`,
OmegaConf resolvers its configs use). The runner imports them before the config resolves and names no
system itself; a config can list only modules of VisionCore's own packages.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from training.toolkit.errors import ConfigValueError

PLUGIN_PACKAGES = ("models.", "datamodules.", "callbacks.")


def load_plugins(cfg: Any) -> None:
    """Import every module `cfg.plugins` lists (idempotent: Python imports a module once)."""
    plugins = cfg.get("plugins") if isinstance(cfg, Mapping) or hasattr(cfg, "get") else None
    for name, module in (plugins or {}).items():
        if not isinstance(module, str) or not module.startswith(PLUGIN_PACKAGES):
            raise ConfigValueError(
                f"plugins.{name}={module!r} is not a module of a VisionCore system: a plugin is a dotted module "
                f"under {', '.join(p.rstrip('.') for p in PLUGIN_PACKAGES)} (e.g. plugins.{name}=models.<system>.legacy)."
            )
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if not err.name or not module.startswith(err.name):
                raise  # the module exists; something it imports is missing
            raise ConfigValueError(
                f"plugins.{name}={module} cannot be imported ({err}); fix the module path or remove the entry."
            ) from err
