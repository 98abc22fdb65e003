"""Command line of the ukiyoe data tools (key=value arguments, like Hydra overrides).

    python -m datamodules.ukiyoe generate data_dir=DATA_DIR [resolution=32] [num_train=2048] [num_val=256]
                                          [num_test=512] [seed=0] [workers=1]
    python -m datamodules.ukiyoe plot out=FILE.png [num=32] [resolutions=64,32] [seed=0]

`generate` writes the procedural prints into <data_dir>/ukiyoe/r<resolution>_seed<seed>_<hash>/ in
ImageFolder layout (data_dir is the datamodule's `data.data_dir`), or keeps that folder when it is
already complete. `workers=N` renders in N processes (the same bytes). `plot` saves a contact sheet
of the same prints at each resolution.
"""

from __future__ import annotations

import logging
import sys
import time

from datamodules.cli import parse_command
from training.errors import UserError

DEFAULTS = {
    "generate": {
        "resolution": "32",
        "num_train": "2048",
        "num_val": "256",
        "num_test": "512",
        "seed": "0",
        "workers": "1",
    },
    "plot": {"num": "32", "resolutions": "64,32", "seed": "0"},
}
REQUIRED = {"generate": "data_dir", "plot": "out"}
USAGE = (
    "usage: python -m datamodules.ukiyoe generate data_dir=DATA_DIR [resolution=32] [num_train=2048] "
    "[num_val=256] [num_test=512] [seed=0] [workers=1]\n"
    "       python -m datamodules.ukiyoe plot out=FILE.png [num=32] [resolutions=64,32] [seed=0]"
)


def parse(argv: list[str]) -> tuple[str, dict[str, str]]:
    """(command, {key: value}) from `COMMAND key=value ...`, defaults filled in; UserErrors name the bad argument."""
    command, given = parse_command(
        argv, {name: (REQUIRED[name], *keys) for name, keys in DEFAULTS.items()}, USAGE
    )
    options = {**DEFAULTS[command], **given}
    if REQUIRED[command] not in options:
        raise UserError(f"`{command}` needs {REQUIRED[command]}=...\n{USAGE}")
    return command, options


def _integer(key: str, value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise UserError(f"{key}={value!r}: expected an integer >= {minimum}.")
    return number


def main(argv: list[str]) -> int:
    progress = logging.StreamHandler(sys.stdout)
    store_log = logging.getLogger("datamodules.ukiyoe.store")
    store_log.addHandler(progress)
    store_log.setLevel(logging.INFO)
    started = time.perf_counter()
    try:
        command, options = parse(argv)
        if command == "generate":
            from datamodules.ukiyoe.store import PrintSetConfig, generate

            config = PrintSetConfig(
                **{
                    key: _integer(key, options[key], 0)
                    for key in ("seed", "num_train", "num_val", "num_test")
                },
                resolution=_integer("resolution", options["resolution"], 8),
            )
            generate(config, options["data_dir"], workers=_integer("workers", options["workers"], 1))
        else:
            from datamodules.ukiyoe.plots import plot_prints

            resolutions = tuple(_integer("resolutions", r, 8) for r in options["resolutions"].split(","))
            path = plot_prints(
                options["out"],
                num=_integer("num", options["num"], 1),
                resolutions=resolutions,
                seed=_integer("seed", options["seed"], 0),
            )
            print(f"wrote {path}")
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        store_log.removeHandler(progress)
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
