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

import sys

from datamodules.cli import generate_set, integer, parse_with_defaults, run
from training.toolkit.errors import UserError

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
    return parse_with_defaults(argv, DEFAULTS, {"generate": "out", "plot": "out"}, USAGE)


def _command(argv: list[str]) -> None:
    command, options = parse(argv)
    if command == "generate":
        from datamodules.design.store import DesignDataConfig, generate

        generate_set(DesignDataConfig, generate, options, options["out"])
    else:
        from datamodules.design.plots import plot_samples
        from datamodules.design.render import SPLIT_STREAMS

        if options["split"] not in SPLIT_STREAMS:
            raise UserError(f"split={options['split']!r}: choose one of {', '.join(SPLIT_STREAMS)}.")
        path = plot_samples(
            options["out"],
            num=integer("num", options["num"], 1),
            resolution=integer("resolution", options["resolution"], 8),
            seed=integer("seed", options["seed"], 0),
            split=options["split"],
        )
        print(f"wrote {path}")


def main(argv: list[str]) -> int:
    return run(argv, _command, "datamodules.design.store")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
