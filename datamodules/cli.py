"""The data generators' command line: `python -m datamodules.<system> COMMAND key=value ...`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from training.errors import UserError


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
