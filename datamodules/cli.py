"""The data generators' command line: `python -m datamodules.<system> COMMAND key=value ...`."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from datamodules.generated_set import GeneratedSetConfig
from training.toolkit.errors import UserError


def parse_command(
    argv: list[str], commands: Mapping[str, Iterable[str]], usage: str
) -> tuple[str, dict[str, str]]:
    """(command, {key: value}) from `COMMAND key=value ...`, each key one of `commands[COMMAND]`;
    a UserError (with `usage`) names an unknown command or argument."""
    if not argv or argv[0] not in commands:
        given = repr(argv[0]) if argv else "none"
        raise UserError(f"Unknown command {given}; valid commands: {', '.join(commands)}.\n{usage}")
    command, valid = argv[0], tuple(commands[argv[0]])
    options = {}
    for argument in argv[1:]:
        key, sep, value = argument.partition("=")
        if not sep or key not in valid:
            raise UserError(
                f"Unknown argument {argument!r} for `{command}`; valid keys: {', '.join(valid)} "
                f"(as key=value).\n{usage}"
            )
        options[key] = value
    return command, options


def parse_with_defaults(
    argv: list[str], defaults: Mapping[str, Mapping[str, str]], required: Mapping[str, str], usage: str
) -> tuple[str, dict[str, str]]:
    """parse_command with `defaults[COMMAND]` filled in and the key `required[COMMAND]` demanded."""
    command, given = parse_command(
        argv, {name: (required[name], *keys) for name, keys in defaults.items()}, usage
    )
    options = {**defaults[command], **given}
    if required[command] not in options:
        raise UserError(f"`{command}` needs {required[command]}=...\n{usage}")
    return command, options


def integer(key: str, value: str, minimum: int) -> int:
    """`value` as an integer >= `minimum`, or a UserError naming `key`."""
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise UserError(f"{key}={value!r}: expected an integer >= {minimum}.")
    return number


def generate_set(
    config_type: type[GeneratedSetConfig],
    generate: Callable[..., Path],
    options: Mapping[str, str],
    data_dir: str | os.PathLike,
) -> None:
    """Run a system's `generate` on the config and `workers` that `options` name."""
    config = config_type(
        resolution=integer("resolution", options["resolution"], 8),
        **{key: integer(key, options[key], 0) for key in ("seed", "num_train", "num_val", "num_test")},
    )
    generate(config, data_dir, workers=integer("workers", options["workers"], 1))


def run(argv: list[str], command: Callable[[list[str]], None], progress_log: str) -> int:
    """Exit status of `command(argv)`: 2 after printing a UserError, else 0 after the elapsed time.
    The generator reports its progress through the logger `progress_log`; its lines go to stdout."""
    progress = logging.StreamHandler(sys.stdout)
    log = logging.getLogger(progress_log)
    log.addHandler(progress)
    log.setLevel(logging.INFO)
    started = time.perf_counter()
    try:
        command(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        log.removeHandler(progress)
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0
