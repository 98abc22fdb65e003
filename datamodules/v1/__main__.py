"""Command line of the v1 data tools (key=value arguments, like Hydra overrides).

    python -m datamodules.v1 simulate tier=T0|T1|T2|T3 size=tiny|small|full [seed=0] [data_dir=DIR]
                                      [configs_dir=DIR] [force=true] [workers=1]
    python -m datamodules.v1 configs  tier=... size=... [seed=0] [configs_dir=DIR]

`simulate` writes the sessions (cached: unchanged sessions are kept) and their dataset configs;
`configs` writes only the dataset configs (no arrays), e.g. to start from a simulated dataset's configs
when writing your own. Training needs neither ahead: `v1.dataset=<tier>_<size>` computes the configs
from the tier definitions and simulates missing sessions on first use. `workers=N` simulates N
sessions at a time in separate processes (full sizes on many cores; the output is the same bytes).
data_dir defaults to $VISIONCORE_ROOT/data (or ./data); configs_dir to <data_dir>/v1/dataset_configs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from datamodules.cli import integer, parse_command, run
from datamodules.v1.simulator import SIZES, TIERS, plan_tier, simulate_tier, write_configs
from datamodules.v1.simulator.simulate import default_data_dir
from training.toolkit.errors import UserError

COMMANDS = {
    "simulate": ("tier", "size", "seed", "data_dir", "configs_dir", "force", "workers"),
    "configs": ("tier", "size", "seed", "data_dir", "configs_dir"),
}
USAGE = (
    "usage: python -m datamodules.v1 simulate tier=T0|T1|T2|T3 size=tiny|small|full [seed=0] "
    "[data_dir=DIR] [configs_dir=DIR] [force=true] [workers=1]\n"
    "       python -m datamodules.v1 configs tier=... size=... [seed=0] [configs_dir=DIR]"
)


def parse(argv: list[str]) -> tuple[str, dict[str, str]]:
    """(command, {key: value}) from `COMMAND key=value ...`; UserErrors name the bad argument."""
    command, options = parse_command(argv, COMMANDS, USAGE)
    for required in ("tier", "size"):
        if required not in options:
            choices = "|".join(TIERS if required == "tier" else SIZES)
            raise UserError(f"`{command}` needs {required}={choices}.\n{USAGE}")
    return command, options


def _flag(value: str) -> bool:
    if value.lower() not in ("true", "false", "1", "0"):
        raise UserError(f"force={value!r}: use force=true or force=false.")
    return value.lower() in ("true", "1")


def _command(argv: list[str]) -> None:
    command, options = parse(argv)
    seed = integer("seed", options.get("seed", "0"), 0)
    data_dir = Path(options["data_dir"]) if "data_dir" in options else default_data_dir()
    configs_dir = options.get("configs_dir")
    if command == "simulate":
        force = _flag(options.get("force", "false"))
        workers = integer("workers", options.get("workers", "1"), 1)
        simulate_tier(options["tier"], options["size"], seed, data_dir, configs_dir, force, workers)
    else:
        plan = plan_tier(options["tier"], options["size"], seed)
        for folder in write_configs(plan, configs_dir or data_dir / "v1" / "dataset_configs"):
            print(f"configs {folder}")


def main(argv: list[str]) -> int:
    return run(argv, _command, "datamodules.v1.simulator")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
