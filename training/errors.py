"""User mistakes become one clear paragraph naming the key or file and the fix, not a traceback."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException, MissingConfigException
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


class UserError(Exception):
    """An error the user can fix from the command line; printed without a traceback."""


def options_of(group: str) -> list[str]:
    """The names selectable for a config group, e.g. `experiment` (`_name` files are shared parts, not options)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml") if not p.stem.startswith("_"))


def explain(err: BaseException) -> str | None:
    """A readable message for a known user mistake, or None to let the error through."""
    from training.checkpoints import CheckpointError  # here: torch-free imports of UserError stay fast

    if isinstance(err, UserError | CheckpointError | FileNotFoundError):
        return str(err)
    if isinstance(err, MissingConfigException):
        return _missing_option(err)
    if isinstance(err, ConfigAttributeError | ConfigKeyError):
        key = getattr(err, "full_key", None) or str(err)
        return (
            f"Unknown config key `{key}`. Check the spelling (`python -m training.run --cfg job` prints "
            f"every key), or add a new key with a leading `+`, e.g. `+{key}=VALUE`."
        )
    if isinstance(err, ValidationError):
        return f"Bad value for `{getattr(err, 'full_key', '?')}`: {err.msg if hasattr(err, 'msg') else err}"
    if isinstance(err, InstantiationException):
        if isinstance(err.__cause__, UserError):  # a constructor's own check: its message says it all
            return str(err.__cause__)
        return f"Could not build an object from the config: {err}"
    if isinstance(err, OmegaConfBaseException):
        return f"Config error: {err}"
    return None


def _missing_option(err: MissingConfigException) -> str:
    """`Could not find 'experiment/foo'` + the valid options of that group and the closest one."""
    message = str(err).splitlines()[0]
    missing = err.missing_cfg_file or (message.split("'")[1] if "'" in message else "")
    group, _, wanted = missing.rpartition("/")
    valid = list(err.options or []) or (options_of(group) if group else [])
    if not valid:
        return message
    close = difflib.get_close_matches(wanted, valid, n=1)
    hint = f" Did you mean `{group}={close[0]}`?" if close else ""
    return f"{message}\nValid `{group}` options: {', '.join(valid)}.{hint}"


def check_argument_types(target: Callable[..., Any], values: Mapping[str, Any], prefix: str) -> None:
    """Raise a UserError naming `prefix.key` when a value cannot match the parameter's annotation.

    Catches typos like `trainer.max_epochs=many` before they fail deep inside the library.
    """
    hints = typing.get_type_hints(target)
    for key, value in values.items():
        allowed = _simple_types(hints.get(key))
        if value is None or not allowed or isinstance(value, allowed):
            continue
        if isinstance(value, int) and float in allowed and not isinstance(value, bool):
            continue
        names = " or ".join(sorted(t.__name__ for t in allowed))
        raise UserError(
            f"Bad value for `{prefix}.{key}`: {value!r} is a {type(value).__name__}, expected {names}."
        )


def _simple_types(hint: Any) -> tuple[type, ...]:
    """The plain types in an annotation, or () when it holds anything we should not judge."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    simple = tuple(t for t in options if t in (int, float, bool, str))
    return simple if len(simple) == len([t for t in options if t is not type(None)]) else ()
