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

import sys

from datamodules.cli import generate_set, integer, parse_with_defaults, run

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
    return parse_with_defaults(argv, DEFAULTS, REQUIRED, USAGE)


def _command(argv: list[str]) -> None:
    command, options = parse(argv)
    if command == "generate":
        from datamodules.ukiyoe.store import PrintSetConfig, generate

        generate_set(PrintSetConfig, generate, options, options["data_dir"])
    else:
        from datamodules.ukiyoe.plots import plot_prints

        resolutions = tuple(integer("resolutions", r, 8) for r in options["resolutions"].split(","))
        path = plot_prints(
            options["out"],
            num=integer("num", options["num"], 1),
            resolutions=resolutions,
            seed=integer("seed", options["seed"], 0),
        )
        print(f"wrote {path}")


def main(argv: list[str]) -> int:
    return run(argv, _command, "datamodules.ukiyoe.store")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
