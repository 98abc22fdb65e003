"""The config of a run that only has a checkpoint: the stored one, with this command's overrides.

`task=test ckpt_path=…` composes the default config like any run; every key the user named on
the command line (or selected as a group, e.g. `trainer=gpu`) is taken from that composition,
everything else from the config stored in the checkpoint, except that a value which was one of the
training machine's `paths.*` folders (the data, the FID feature cache) becomes this machine's.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from training.toolkit.checkpoints import stored_config
from training.toolkit.errors import CONF_DIR, UserError
from training.validation import config_leaves

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


def experiment_of_checkpoint(path: str | Path) -> list[str]:
    """`["experiment=<name>"]` for the experiment whose run wrote the checkpoint at `path` when conf/ has it,
    else `[]` (also when the file is missing or refused: the door that opens it later says why)."""
    try:
        name = (stored_config(path, str(path)) or {}).get("name")
    except Exception:  # noqa: BLE001 - reported, in one paragraph, by the task that opens the file
        return []
    return [f"experiment={name}"] if name and (CONF_DIR / "experiment" / f"{name}.yaml").is_file() else []


def with_checkpoint_experiment(argv: list[str]) -> list[str]:
    """`training.run`'s arguments, with the checkpoint's experiment added when a task other than fit names one
    checkpoint and no experiment: Hydra checks each override against the composition before the stored
    config replaces it, so an override of a key only the run's experiment has (`model.quality.num_samples`
    of a decoder) would otherwise fail against the default experiment."""
    given = dict(arg.lstrip("+").split("=", 1) for arg in argv if "=" in arg and not arg.startswith("-"))
    path = given.get("ckpt_path", "")
    if given.get("task", "fit") == "fit" or "experiment" in given or not path or "," in path:
        return argv
    return [*argv, *experiment_of_checkpoint(path)]


def config_from_checkpoint(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """Merge the checkpoint's stored config under the user's overrides and runtime keys."""
    config = stored_config(cfg.ckpt_path, str(cfg.ckpt_path))
    if config is None:
        raise UserError(
            f"ckpt_path={cfg.ckpt_path} has no VisionCore metadata (an older or foreign checkpoint). "
            f"Convert it first: python -m training.migrate {cfg.ckpt_path} NEW.ckpt experiment=<its experiment>"
        )
    stored = OmegaConf.create(config)
    given = override_keys(overrides)
    folders = _machine_folders(stored)
    with open_dict(stored):
        for key in (*RUNTIME_KEYS, *given):
            value = OmegaConf.select(cfg, key, default=None)
            if value is not None or key in cfg:
                OmegaConf.update(stored, key, value, merge=False, force_add=True)
        _rehome(stored, folders, skip=given)
    return stored


def _machine_folders(stored: DictConfig) -> dict[str, str]:
    """{folder: `${paths.<name>}`} for the training machine's `paths.*` as the checkpoint stored them, but
    `output_dir`: the training run's own folder, which its stored loggers rightly keep naming."""
    paths = stored.get("paths")
    if not isinstance(paths, DictConfig):
        return {}
    return {
        value: f"${{paths.{name}}}"
        for name, value in OmegaConf.to_container(paths, resolve=False).items()
        if name != "output_dir" and isinstance(value, str) and value and not value.startswith("${")
    }


def _rehome(stored: DictConfig, folders: dict[str, str], skip: list[str]) -> None:
    """The checkpoint stores its config resolved, so `data.data_dir` or `model.quality.feature_cache` hold the
    training machine's folders. A value that is exactly one of them (not a file below one, such as a stage
    checkpoint, which may be meant where it is) becomes the same `paths.*` folder of this invocation."""
    for key, value in config_leaves(OmegaConf.to_container(stored, resolve=False)):
        if isinstance(value, str) and value in folders and key.split(".")[0] != "paths" and key not in skip:
            OmegaConf.update(stored, key, folders[value], merge=False)
