"""`python -m training.migrate OLD NEW [overrides]`: rewrite an older checkpoint as a current one.

An old file carries no config, so the user names the experiment (or model and data) it was trained
with; the weights are mapped by the matching `training.toolkit.legacy` migration, which also says which
config values the file's shapes fix (e.g. `model.net.stem_channels=24` for a Torch-Playground DenseNet3).
Those are set before the model is built, the weights are loaded strictly into it, and the result is
written with the resolved config and `migrated_from` metadata, so that
`python -m training.run task=test ckpt_path=NEW` needs nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from training.launch import register_resolvers
from training.plugins import load_plugins
from training.toolkit.checkpoints import (
    META_KEY,
    atomic_torch_save,
    checkpoint_metadata,
)
from training.toolkit.errors import CONF_DIR, UserError, explain, options_of
from training.toolkit.legacy import (
    ConvertedCheckpoint,
    LegacyCheckpointError,
    WeightsMismatchError,
    detect,
    known_formats,
    load_weights_strictly,
    read_legacy_file,
)
from training.toolkit.optim import parameter_groups
from training.toolkit.safe_load import trust_checkpoints

log = logging.getLogger("training.migrate")


def compose_target_config(overrides: Sequence[str], output_dir: Path) -> DictConfig:
    """The config `training.run OVERRIDES` would use, with `paths.output_dir` set (no Hydra run here)."""
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides))
    load_plugins(cfg)  # the system's migrations register themselves
    OmegaConf.update(cfg, "paths.output_dir", str(output_dir))
    return cfg


def carry_optimizer_state(
    module: pl.LightningModule, converted: ConvertedCheckpoint
) -> tuple[dict | None, str]:
    """The old optimizer state re-indexed for the module's optimizer, or None and why it was dropped.

    Carried only when the mapping is 1:1: one old parameter group over all parameters in module order
    (so position i is the i-th parameter), the same optimizer kind, and state shapes equal to the weights.
    """
    old = converted["optimizer_state"]
    factory = getattr(module, "optimizer_factory", None)
    if old is None or factory is None:
        return None, "dropped: " + (
            "the old file has none" if old is None else "the module has no optimizer_factory"
        )
    params = dict(module.named_parameters())
    order = [name for name in converted["state_dict"] if name in params]  # the old network's parameter order
    groups = old.get("param_groups", [])
    if len(groups) != 1 or list(groups[0]["params"]) != list(range(len(params))) or len(order) != len(params):
        return None, (
            f"dropped: {sum(len(g['params']) for g in groups)} old parameters in {len(groups)} group(s) "
            f"do not map 1:1 onto the model's {len(params)} parameters"
        )
    optimizer = factory(parameter_groups(module))
    foreign = set(groups[0]) - set(optimizer.param_groups[0]) - {"params", "initial_lr"}
    if foreign:
        return (
            None,
            f"dropped: the old optimizer (with {sorted(foreign)}) is not a {type(optimizer).__name__}",
        )
    old_state, position = old.get("state", {}), {name: i for i, name in enumerate(order)}
    name_of = {id(p): name for name, p in params.items()}
    state = {}
    for index, param in enumerate(p for group in optimizer.param_groups for p in group["params"]):
        entry = old_state.get(position[name_of[id(param)]])
        if entry is None:
            continue
        if any(torch.is_tensor(v) and v.dim() > 0 and v.shape != param.shape for v in entry.values()):
            return None, f"dropped: its state for {name_of[id(param)]} has another shape than the weight"
        state[index] = entry
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})
    return (
        optimizer.state_dict(),
        f"carried over ({len(state)} parameter states; hyper-parameters from the config)",
    )


def current_checkpoint(
    module: pl.LightningModule,
    converted: ConvertedCheckpoint,
    config: dict[str, Any],
    format_name: str,
    source: Path,
) -> dict[str, Any]:
    """A checkpoint `training.run` reads like its own: weights, Lightning version, metadata, optimizer."""
    optimizer_state, optimizer_note = carry_optimizer_state(module, converted)
    metadata = checkpoint_metadata(config)
    metadata["migrated_from"] = {
        "format": format_name,
        "path": str(source),
        "optimizer": optimizer_note,
        "config_overrides": dict(converted.get("config_overrides") or {}),
        "notes": converted["notes"],
    }
    checkpoint: dict[str, Any] = {
        "epoch": converted["epoch"],
        "global_step": converted["global_step"],
        "pytorch-lightning_version": pl.__version__,
        "state_dict": module.state_dict(),
        META_KEY: metadata,
    }
    module.on_save_checkpoint(checkpoint)  # the module's own records (e.g. v1's session/unit lists)
    if optimizer_state is not None:  # fit ckpt_path=NEW then continues with it (and a fresh LR schedule)
        checkpoint.update(optimizer_states=[optimizer_state], lr_schedulers=[])
    return checkpoint


def fitting_configs(
    weights: Mapping[str, torch.Tensor], overrides: Sequence[str], output_dir: Path
) -> list[str]:
    """Experiments, else models with the chosen data, whose network has exactly these keys and shapes."""
    shapes = {k: tuple(v.shape) for k, v in weights.items()}

    def fits(candidate: list[str]) -> bool:
        try:
            model = hydra.utils.instantiate(compose_target_config(candidate, output_dir).model)
        except Exception:  # a candidate that does not build with these overrides simply does not fit
            return False
        return {k: tuple(v.shape) for k, v in model.state_dict().items()} == shapes

    found = [f"experiment={name}" for name in options_of("experiment") if fits([f"experiment={name}"])]
    if not found:
        rest = [o for o in overrides if not o.startswith("model=")]
        found = [
            f"{' '.join(rest)} model={name}".strip()
            for name in options_of("model")
            if fits([*rest, f"model={name}"])
        ]
    return found


def migrate(old: Path, new: Path, overrides: Sequence[str]) -> dict[str, Any]:
    """Convert OLD into a current checkpoint at NEW for the model OVERRIDES compose; returns what was done."""
    if old.resolve() == new.resolve():
        raise UserError(f"NEW must differ from OLD ({old}): keep the old file until the new one is checked.")
    checkpoint = read_legacy_file(old)
    cfg = compose_target_config(overrides, new.parent.resolve())  # first: its plugins register migrations
    migration = detect(checkpoint, str(old))
    try:
        converted = migration.apply(checkpoint, OmegaConf.to_container(cfg, resolve=True))
    except LegacyCheckpointError as err:
        raise LegacyCheckpointError(f"{old}: {err}") from err
    file_values = dict(converted.get("config_overrides") or {})
    for key, value in file_values.items():  # what the file's shapes fix, set before the model is built
        OmegaConf.update(cfg, key, value, merge=False, force_add=True)
    config = OmegaConf.to_container(cfg, resolve=True)
    module: pl.LightningModule = hydra.utils.instantiate(cfg.model)
    try:
        load_weights_strictly(module, converted["state_dict"], f"{old} ({migration.name})")
    except WeightsMismatchError as err:
        chosen = " ".join(overrides) or "the default experiment"
        network = OmegaConf.select(cfg, "model.net._target_") or cfg.model._target_
        if migration.checks_architecture:  # the file's architecture fits this model: the file is damaged
            raise UserError(
                f"{err} The file's architecture matches `{chosen}` ({network}), so these tensors are missing "
                "from or extra in the file itself: it is damaged or edited; migrate an intact copy."
            ) from err
        found = fitting_configs(converted["state_dict"], overrides, new.parent.resolve())
        hint = (
            f"They fit: {' | '.join(found)}; run python -m training.migrate {old} {new} {found[0]}"
            if found
            else f"No experiment ({', '.join(options_of('experiment'))}) or model in conf/model/ fits them; name the "
            "model and data they were trained with, e.g. model=resnet20 data=cifar10"
        )
        raise UserError(f"{err} (model of `{chosen}`: {network}). {hint}.") from err
    current = current_checkpoint(module, converted, config, migration.name, old)
    atomic_torch_save(current, new)
    return {
        "format": migration.name,
        "new": str(new),
        "epoch": current["epoch"],
        "global_step": current["global_step"],
        "optimizer": current[META_KEY]["migrated_from"]["optimizer"],
        "config_overrides": file_values,
        "experiment": config.get("name"),
    }


def every_system_format() -> str:
    """The formats that the plugins of every experiment file register, one per line (for --help: the
    systems register their own formats). The files' `plugins` entries are read as plain YAML."""
    for path in sorted((CONF_DIR / "experiment").glob("*.yaml")):
        with contextlib.suppress(Exception):  # a file that does not load lists nothing
            load_plugins({"plugins": OmegaConf.to_container(OmegaConf.load(path)).get("plugins") or {}})
    return known_formats("\n  ")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    wants_help = any(arg in ("-h", "--help") for arg in argv)
    parser = argparse.ArgumentParser(
        prog="python -m training.migrate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=("Known formats:\n  " + every_system_format()) if wants_help else None,
    )
    parser.add_argument("old", type=Path, help="the old checkpoint file")
    parser.add_argument("new", type=Path, help="where to write the current checkpoint")
    parser.add_argument(
        "overrides", nargs="*", help="Hydra overrides naming its model, e.g. experiment=cnn_digits"
    )
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="open OLD with full unpickling, which can run code from it (only for files you trust)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        with trust_checkpoints(args.trust_checkpoint):
            done = migrate(args.old, args.new, args.overrides)
    except Exception as err:
        message = explain(err)
        if message is None:
            raise
        print(f"training.migrate: {message}", file=sys.stderr)
        return 2
    log.info(
        "Migrated %s (%s, epoch %d, step %d, experiment %s%s) -> %s; optimizer state %s.",
        args.old,
        done["format"],
        done["epoch"],
        done["global_step"],
        done["experiment"],
        "".join(f", {key}={value} from the file" for key, value in done["config_overrides"].items()),
        done["new"],
        done["optimizer"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
