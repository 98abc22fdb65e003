"""Command line of the design data tools (key=value arguments, like Hydra overrides).

    python -m datamodules.design generate out=DATA_DIR [resolution=64] [num_train=4096] [num_val=512]
                                          [num_test=512] [seed=0] [workers=1]
    python -m datamodules.design plot out=FILE.png [num=8] [resolution=128] [seed=0] [split=val]

`generate` renders the shards into <out>/design/r<resolution>_seed<seed>_<hash>/ (out is a data
directory, the datamodule's `data.data_dir`), or keeps them when that folder is already complete.
`workers=N` renders in N processes (the same bytes). `plot` saves a grid of designs beside their
F_Tensor channels.
"""

from __future__ import annotations

import logging
import sys
import time

from datamodules.cli import parse_command
from training.errors import UserError

DEFAULTS = {
    "generate": {
        "resolution": "64",
        "num_train": "4096",
        "num_val": "512",
        "num_test": "512",
        "seed": "0",
        "workers": "1",
    },
    "plot": {"num": "8", "resolution": "128", "seed": "0", "split": "val"},
}
USAGE = (
    "usage: python -m datamodules.design generate out=DATA_DIR [resolution=64] [num_train=4096] [num_val=512] "
    "[num_test=512] [seed=0] [workers=1]\n"
    "       python -m datamodules.design plot out=FILE.png [num=8] [resolution=128] [seed=0] [split=val]"
)


def parse(argv: list[str]) -> tuple[str, dict[str, str]]:
    """(command, {key: value}) from `COMMAND key=value ...`, defaults filled in; UserErrors name the bad argument."""
    command, given = parse_command(argv, {name: ("out", *keys) for name, keys in DEFAULTS.items()}, USAGE)
    options = {**DEFAULTS[command], **given}
    if "out" not in options:
        raise UserError(f"`{command}` needs out=...\n{USAGE}")
    return command, options


def _integer(options: dict[str, str], key: str, minimum: int) -> int:
    value = options[key]
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise UserError(f"{key}={value!r}: expected an integer >= {minimum}.")
    return number


def main(argv: list[str]) -> int:
    progress = logging.StreamHandler(sys.stdout)
    store_log = logging.getLogger("datamodules.design.store")
    store_log.addHandler(progress)
    store_log.setLevel(logging.INFO)
    started = time.perf_counter()
    try:
        command, options = parse(argv)
        if command == "generate":
            from datamodules.design.store import DesignDataConfig, generate

            config = DesignDataConfig(
                resolution=_integer(options, "resolution", 8),
                seed=_integer(options, "seed", 0),
                num_train=_integer(options, "num_train", 0),
                num_val=_integer(options, "num_val", 0),
                num_test=_integer(options, "num_test", 0),
            )
            generate(config, options["out"], workers=_integer(options, "workers", 1))
        else:
            from datamodules.design.plots import plot_samples
            from datamodules.design.render import SPLIT_STREAMS

            if options["split"] not in SPLIT_STREAMS:
                raise UserError(f"split={options['split']!r}: choose one of {', '.join(SPLIT_STREAMS)}.")
            path = plot_samples(
                options["out"],
                num=_integer(options, "num", 1),
                resolution=_integer(options, "resolution", 8),
                seed=_integer(options, "seed", 0),
                split=options["split"],
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
