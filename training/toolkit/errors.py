"""User mistakes become one clear paragraph naming the key or file and the fix, not a traceback."""

from __future__ import annotations

import difflib
import os
import sys
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hydra.errors import (
    CompactHydraException,
    ConfigCompositionException,
    InstantiationException,
    MissingConfigException,
)
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    InterpolationResolutionError,
    OmegaConfBaseException,
    ValidationError,
)

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


class UserError(Exception):
    """An error the user can fix from the command line; printed without a traceback."""


class CheckpointError(ValueError):
    """A checkpoint path the user gave is missing or not a checkpoint."""


class ConfigValueError(UserError, ValueError):
    """A bad config value found by a constructor: a UserError, and a ValueError for callers that catch those."""


def options_of(group: str) -> list[str]:
    """The names selectable for a config group, e.g. `experiment` (`_name` files are shared parts, not options)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml") if not p.stem.startswith("_"))


def explain(err: BaseException) -> str | None:
    """A readable message for a known user mistake, or None to let the error through."""
    if isinstance(err, UserError | CheckpointError | FileNotFoundError):
        return _worker_message(err)
    causes = _causes(err)
    if isinstance(err, InstantiationException | InterpolationResolutionError):
        for cause in causes:  # a constructor's or resolver's own check: its message says it all
            if isinstance(cause, UserError | CheckpointError | FileNotFoundError):
                return _worker_message(cause)
    if isinstance(err, MissingConfigException):
        return _missing_option(err)
    if isinstance(err, ConfigCompositionException) and isinstance(
        err.__cause__, ConfigAttributeError | ConfigKeyError
    ):
        return _unknown_key(getattr(err.__cause__, "full_key", None) or str(err.__cause__))
    resolver_error = next((c for c in causes if not isinstance(c, OmegaConfBaseException)), None)
    if isinstance(err, InterpolationResolutionError) and isinstance(resolver_error, ValueError | KeyError):
        return f"{resolver_error} (while resolving `{getattr(err, 'full_key', '?')}`)"
    if isinstance(err, ConfigAttributeError | ConfigKeyError):
        return _unknown_key(getattr(err, "full_key", None) or str(err))
    if isinstance(err, ValidationError):
        return f"Bad value for `{getattr(err, 'full_key', '?')}`: {err.msg if hasattr(err, 'msg') else err}"
    if isinstance(err, InstantiationException):
        return f"Could not build an object from the config: {err}"
    if isinstance(err, CompactHydraException):  # override syntax and other composition errors
        return " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    if isinstance(err, OmegaConfBaseException):
        return f"Config error: {err}"
    return None


def _causes(err: BaseException) -> list[BaseException]:
    """The exceptions `err` was raised from, innermost last: causes, and contexts not suppressed with
    `from None` (OmegaConf re-raises its own errors that way, so through those the context is followed)."""
    chain: list[BaseException] = []
    while True:
        hidden = err.__suppress_context__ and not isinstance(err, OmegaConfBaseException)
        inner = err.__cause__ or (None if hidden else err.__context__)
        if inner is None or inner in chain:
            return chain
        chain.append(inner)
        err = inner


def _unknown_key(key: str) -> str:
    return (
        f"Unknown config key `{key}`. Check the spelling (`python -m training.run --cfg job` prints "
        f"every key), or add a new key with a leading `+`, e.g. `+{key}=VALUE`."
    )


def _worker_message(err: BaseException) -> str:
    """The error's own message; for one re-raised from a DataLoader worker, without the worker's traceback."""
    message = str(err)
    if "Original Traceback (most recent call last):" not in message:
        return message
    kind = type(err)
    marker = (
        f"{kind.__name__}: " if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}: "
    )
    return message.rpartition(marker)[2].strip() or message


def cli(main: Callable[[], Any]) -> None:
    """Run a `@hydra.main` entry point so that a mistake found while Hydra composes the config (an unknown
    option, key or override syntax) is also one paragraph and exit status 2, like those found later."""
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # Hydra raises instead of printing its own report
    try:
        main()
    except Exception as err:
        exit_if_user_error(err)
        raise


def exit_if_user_error(err: BaseException) -> None:
    """A user mistake: print its paragraph and exit with status 2. Anything else returns, to be re-raised."""
    message = explain(err)
    if message is not None:
        print(f"Error: {message}", file=sys.stderr)
        sys.exit(2)


def _missing_option(err: MissingConfigException) -> str:
    """`trainer=nope`: the valid options of that group and the closest one."""
    message = str(err).splitlines()[0]
    missing = err.missing_cfg_file or (message.split("'")[1] if "'" in message else "")
    group, _, wanted = missing.rpartition("/")
    valid = (options_of(group) if group and (CONF_DIR / group).is_dir() else []) or list(err.options or [])
    if not valid:
        return message
    close = difflib.get_close_matches(wanted, valid, n=1)
    hint = f" Did you mean `{group}={close[0]}`?" if close else ""
    return (
        f"`{group}={wanted}` is not an option (there is no conf/{group}/{wanted}.yaml). "
        f"Valid `{group}` options: {', '.join(valid)}.{hint}"
    )


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
            f"Bad value for `{prefix}.{key}`: {value!r} is a {type(value).__name__}, expected {names}; "
            f"set it on the command line ({prefix}.{key}=...) or in the config."
        )


def _simple_types(hint: Any) -> tuple[type, ...]:
    """The plain types in an annotation, or () when it holds anything we should not judge."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    simple = tuple(t for t in options if t in (int, float, bool, str))
    return simple if len(simple) == len([t for t in options if t is not type(None)]) else ()
