"""Check a composed config before anything runs, so a mistake costs one paragraph and writes nothing.

`check_config` runs one table of key -> rule over every value (ranges, choices, files that must
exist), Lightning's own annotations over `trainer.*`, the devices asked for against this machine's,
and whether the run directory already holds a run. Each problem is a `UserError` naming the key, the
bad value and a fix. It runs twice: from the Hydra callback `ValidateBeforeRun` (registered in
conf/train.yaml) before Hydra creates or writes the run directory, and from `run_task` on the config
it will really use (a checkpoint's stored config merged in; every multirun job). What only the data
can tell (class counts, unreadable files) is checked where the data is read.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from training.plugins import load_plugins
from training.toolkit.errors import UserError, check_argument_types, exit_if_user_error

TASKS = ("fit", "validate", "test", "predict", "export", "sample")
PRECISIONS = (
    "16-true",
    "16-mixed",
    "bf16-true",
    "bf16-mixed",
    "32-true",
    "64-true",
    "64",
    "32",
    "16",
    "bf16",
)
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu", "hpu")
# (value) -> what is wrong with it, or None. Rules skip null unless they say otherwise.
Check = Callable[[Any], str | None]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def integer(low: int, example: int, required: bool = True) -> Check:
    def check(value: Any) -> str | None:
        if value is None and not required:
            return None
        if not _is_int(value) or value < low:
            return f"expected an integer >= {low}" + ("" if required else " (or null)") + f", e.g. {example}"
        return None

    return check


def number(
    low: float, example: float, above: bool = False, high: float | None = None, to: bool = False
) -> Check:
    """A number >= low (> low when `above`) and < high (<= high when `to`); null is allowed (the key is off)."""

    def check(value: Any) -> str | None:
        if value is None:
            return None
        ok = _is_number(value) and (value > low if above else value >= low)
        if not ok or (high is not None and (value > high if to else value >= high)):
            bounds = f"{'>' if above else '>='} {low:g}" + (
                f" and {'<=' if to else '<'} {high:g}" if high is not None else ""
            )
            return f"expected a number {bounds}, e.g. {example:g}"
        return None

    return check


def choice(*options: Any) -> Check:
    def check(value: Any) -> str | None:
        if value in options and not isinstance(value, bool) or value is None and None in options:
            return None
        return "expected one of " + ", ".join(dict.fromkeys("null" if o is None else str(o) for o in options))

    return check


def batches(value: Any) -> str | None:
    """Lightning's `limit_*_batches` / `val_check_interval`: a count (int) or a share of the epoch (float)."""
    if value is None or (_is_int(value) and value >= 0) or (isinstance(value, float) and 0.0 <= value <= 1.0):
        return None
    return "expected a number of batches (an integer >= 0) or a share of the epoch (a float in [0, 1])"


def boolean(value: Any) -> str | None:
    return None if value is None or isinstance(value, bool) else "expected true or false"


def checkpoint_file(value: Any) -> str | None:
    """An existing PyTorch checkpoint (torch.save writes a zip; old files are a pickle)."""
    if not isinstance(value, str | os.PathLike):
        return None  # a flag that happens to share the suffix (e.g. grad_checkpoint: true)
    path = Path(value).expanduser()
    if not path.exists():
        return f"{path} does not exist{_near(path)}; give a .ckpt file, e.g. logs/<experiment>/runs/<run>/checkpoints/last.ckpt"
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.ckpt"))[:5]
        return f"that is a directory; give a .ckpt file inside it (it holds: {', '.join(found) or 'none'})"
    with path.open("rb") as handle:
        head = handle.read(1)
    if not (zipfile.is_zipfile(path) or head == b"\x80"):
        return "that file is not a readable PyTorch checkpoint (neither a zip nor a pickle): a text file or another format"
    return None


def folder(value: Any) -> str | None:
    if value is None or Path(str(value)).expanduser().is_dir():
        return None
    path = Path(str(value)).expanduser()
    return f"{path} is not an existing folder{_near(path)}; give the folder that holds the files (or null)"


def _near(path: Path) -> str:
    """`, did you mean …?` when the parent folder holds a similar name."""
    if not path.parent.is_dir():
        return ""
    close = difflib.get_close_matches(path.name, [p.name for p in path.parent.iterdir()], n=3)
    return f" (did you mean {' or '.join(str(path.parent / c) for c in close)}?)" if close else ""


def devices(value: Any) -> str | None:
    if value in ("auto", -1) or (_is_int(value) and value >= 1):
        return None
    if isinstance(value, list | tuple) and value and all(_is_int(v) and v >= 0 for v in value):
        return None
    if isinstance(value, str) and re.fullmatch(r"\d+(,\d+)*,?", value.strip()) and value.strip() != "0":
        return None
    return "expected a number of devices >= 1, -1 or auto (all), or a list of device indices, e.g. [0, 1]"


# Key patterns (fnmatch over dotted keys; `*` also crosses dots) -> rule; the first match wins.
RULES: dict[str, Check] = {
    "task": choice(*TASKS),
    "resume": choice(None, "auto", "never"),
    "ckpt_path": checkpoint_file,
    "seed": integer(0, 42),
    "torch_threads": integer(1, 4, required=False),
    "monitor_mode": choice("min", "max"),
    "test_after_fit": boolean,
    "trust_checkpoint": boolean,
    "sample.num": integer(1, 16),
    "data.batch_size": integer(1, 64),
    "data.eval_batch_size": integer(1, 256, required=False),
    "data.num_workers": integer(0, 4),
    "data.num_train": integer(1, 1024),
    "data.num_val": integer(0, 256),
    "data.num_test": integer(0, 256),
    "data.*seed": integer(0, 0, required=False),
    "data.train_fraction": number(0.0, 0.9, above=True, high=1.0, to=True),
    "data.*val_fraction": number(0.0, 0.1, high=1.0),
    "data.*test_fraction": number(0.0, 0.2, high=1.0),
    "data.image_folder.train": folder,
    "data.image_folder.test": folder,
    "model.lr": number(0.0, 0.001, above=True),
    "model.*.lr": number(0.0, 0.001, above=True),
    "model.*weight_decay": number(0.0, 0.0001),
    "model.*dropout": number(0.0, 0.1, high=1.0, to=True),
    "model.label_smoothing": number(0.0, 0.1, high=1.0),
    "model.*_checkpoint": checkpoint_file,
    "trainer.max_epochs": integer(-1, 10, required=False),
    "trainer.min_epochs": integer(0, 1, required=False),
    "trainer.max_steps": integer(-1, 1000),
    "trainer.gradient_clip_val": number(0.0, 1.0),
    "trainer.gradient_clip_algorithm": choice(None, "norm", "value"),
    "trainer.accumulate_grad_batches": integer(1, 2),
    "trainer.check_val_every_n_epoch": integer(1, 1, required=False),
    "trainer.limit_*_batches": batches,
    "trainer.overfit_batches": batches,
    "trainer.val_check_interval": batches,
    "trainer.precision": choice(None, *PRECISIONS, 16, 32, 64),
    "trainer.devices": devices,
    "trainer.num_nodes": integer(1, 1),
}


def check_config(cfg: DictConfig, run_dir: str | os.PathLike | None = None) -> None:
    """Raise a `UserError` for the first kind of mistake found (every bad value of that kind named)."""
    problems = [f"`{key}={_shown(value)}`: {problem}" for key, value, problem in _rule_problems(cfg)]
    if problems:
        raise UserError(
            f"Bad config value{'s' if len(problems) > 1 else ''}: {'; '.join(problems)}. "
            "Fix it on the command line (key=value) or in the experiment's config."
        )
    task = cfg.get("task")
    if task != "fit" and not cfg.get("ckpt_path"):
        raise UserError(f"task={task} needs ckpt_path=PATH to a checkpoint (e.g. .../checkpoints/last.ckpt).")
    trainer = cfg.get("trainer")
    if isinstance(trainer, DictConfig):
        import pytorch_lightning as pl

        check_argument_types(
            pl.Trainer.__init__, {k: v for k, v in trainer.items() if k != "_target_"}, "trainer"
        )
        check_devices(trainer.get("accelerator"), trainer.get("devices"))
    if run_dir is not None:
        check_run_dir(cfg, Path(run_dir))


def _rule_problems(cfg: DictConfig) -> Iterator[tuple[str, Any, str]]:
    for key, raw in config_leaves(OmegaConf.to_container(cfg, resolve=False)):
        if raw == "???":
            yield key, raw, "this config needs a value here; give one, e.g. `" + key + "=VALUE`"
            continue
        rule = next((check for pattern, check in RULES.items() if fnmatch.fnmatchcase(key, pattern)), None)
        if rule is None or _is_reference(raw):
            continue  # a plain `${other.key}` is judged at that key
        try:
            value = OmegaConf.select(cfg, key)
        except Exception as err:  # an interpolation that cannot resolve yet is reported where it is used,
            mistake = _user_error_behind(err)  # unless a resolver already named the user's mistake
            if mistake is not None:
                raise mistake from None
            continue
        value = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        problem = rule(value)
        if problem:
            yield key, value, problem


def _user_error_behind(err: BaseException) -> UserError | None:
    while err is not None and not isinstance(err, UserError):
        err = err.__cause__ or err.__context__
    return err


def config_leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every leaf of a config container (lists are leaves), Hydra's own keys skipped."""
    if isinstance(node, dict):
        for name, child in node.items():
            if not (prefix == "" and name == "hydra"):
                yield from config_leaves(child, f"{prefix}{name}.")
    else:
        yield prefix[:-1], node


def _is_reference(raw: Any) -> bool:
    return isinstance(raw, str) and re.fullmatch(r"\$\{[\w.]+\}", raw) is not None


def _shown(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def check_devices(accelerator: Any, wanted: Any) -> None:
    """An accelerator this machine does not have, or more devices than it has: name the keys and the machine."""
    if not isinstance(accelerator, str) or accelerator in ("auto", "cpu"):
        return
    if accelerator not in ACCELERATORS:
        raise UserError(
            f"Bad config value: `trainer.accelerator={accelerator}`: expected one of {', '.join(ACCELERATORS)} "
            "(or pick a preset: trainer=cpu|gpu|mps|ddp|ddp_cpu|torchrun|auto)."
        )
    import torch

    if accelerator in ("gpu", "cuda"):
        available, kind = torch.cuda.device_count(), "CUDA GPU"
    elif accelerator == "mps":
        available, kind = int(torch.backends.mps.is_available()), "Apple MPS device"
    else:
        available, kind = 0, f"{accelerator.upper()} device"
    if isinstance(wanted, list | tuple):
        needed = max(int(v) for v in wanted) + 1
    elif isinstance(wanted, str) and wanted not in ("auto", "-1"):
        needed = max(int(v) for v in wanted.strip(",").split(",")) + (1 if "," in wanted else 0)
    else:
        needed = int(wanted) if _is_int(wanted) and wanted > 0 else 1
    if available >= needed:
        return
    has = f"{available} {kind}{'s' if available != 1 else ''}" if available else f"no {kind}"
    fix = f"set trainer.devices to at most {available}" if available else f"run where there is a {kind}"
    raise UserError(
        f"`trainer.accelerator={accelerator}` with `trainer.devices={wanted}` needs {needed} {kind}"
        f"{'s' if needed != 1 else ''}, but this machine has {has} (and {os.cpu_count()} CPU cores). "
        f"Train on the CPU with trainer=cpu (or trainer=ddp_cpu for 2 DDP processes), or {fix}."
    )


def check_run_dir(cfg: DictConfig, run_dir: Path) -> None:
    """A new fit must not write into a run that already has checkpoints (it would overwrite its files)."""
    if cfg.get("task") != "fit" or cfg.get("ckpt_path") or cfg.get("resume") == "auto":
        return
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").glob("*.ckpt"))
    if checkpoints:
        raise UserError(
            f"{run_dir} already holds a run (checkpoints: {', '.join(checkpoints[:3])}). Continue it with "
            f"resume=auto, start from a file with ckpt_path=PATH, or pick a new run_name (run_name={cfg.get('run_name')})."
        )


class ValidateBeforeRun(Callback):
    """Hydra callback: check the composed config before Hydra creates the run directory or writes to it.

    Hydra swallows exceptions raised by callbacks, so a mistake is printed here and exits with status 2,
    like `training.run` does for errors found later.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            load_plugins(config)
            check_config(config, run_dir=config.hydra.run.dir)
        except Exception as err:
            exit_if_user_error(err)
            raise
