"""`python -m training.run experiment=NAME [key=value ...]`: the one way to train, test and export.

Composes `conf/train.yaml`, then hands the config to `training.tasks.run_task`. User mistakes
are printed as one paragraph (see `training.errors`) and exit with status 2.
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from training.errors import cli, explain
from training.run_dir import register_resolvers

register_resolvers()
log = logging.getLogger("training.run")


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from training.tasks import run_task  # after Hydra set up logging; keeps `--help` fast

    try:
        return run_task(cfg)
    except Exception as err:
        message = explain(err)
        if message is None:
            raise
        log.error("%s", message)
        sys.exit(2)


if __name__ == "__main__":
    cli(main)  # composition mistakes (unknown option, key, override syntax) also exit 2 with one paragraph
