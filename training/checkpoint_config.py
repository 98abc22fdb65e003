"""The config of a run that only has a checkpoint: the stored one, with this command's overrides.

`task=test ckpt_path=…` composes the default config like any run; every key the user named on
the command line (or selected as a group, e.g. `trainer=gpu`) is taken from that composition,
everything else from the config stored in the checkpoint.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf, open_dict

from training.toolkit.checkpoints import stored_config
from training.toolkit.errors import UserError

# Keys that describe this invocation, never the training run.
RUNTIME_KEYS = ("task", "ckpt_path", "paths", "resume", "run_name", "export", "trust_checkpoint")


def override_keys(overrides: list[str]) -> list[str]:
    """`a.b=1`, `+a.b=1`, `~a`, `trainer=gpu` -> the config keys they touch."""
    keys = []
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if not key.startswith("hydra") and key not in ("experiment", "hparams_search", "debug"):
            keys.append(key.split("@")[0].replace("/", "."))
    return keys


def config_from_checkpoint(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """Merge the checkpoint's stored config under the user's overrides and runtime keys."""
    config = stored_config(cfg.ckpt_path, str(cfg.ckpt_path))
    if config is None:
        raise UserError(
            f"ckpt_path={cfg.ckpt_path} has no VisionCore metadata (an older or foreign checkpoint). "
            f"Convert it first: python -m training.migrate {cfg.ckpt_path} NEW.ckpt experiment=<its experiment>"
        )
    stored = OmegaConf.create(config)
    with open_dict(stored):
        for key in (*RUNTIME_KEYS, *override_keys(overrides)):
            value = OmegaConf.select(cfg, key, default=None)
            if value is not None or key in cfg:
                OmegaConf.update(stored, key, value, merge=False, force_add=True)
    return stored
