"""The v1 front end, same process A/B: the training step with `LagFilter` (an einsum over lag windows)
against the same step with a plain `Conv3d` holding the same weight, alternating, 1 thread.

    .venv/bin/python benchmarks/v1_frontend.py                      # v1_single and v1_multidataset
    .venv/bin/python benchmarks/v1_frontend.py --experiments v1_single --repeats 4
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import hydra  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from tests.helpers import compose_config  # noqa: E402
from training.plugins import load_plugins  # noqa: E402


def step_times(experiment: str, repeats: int, tmp: str) -> dict[str, list[float]]:
    """ms per optimizer step (training_step + backward + AdamW) with each front end, alternating."""
    cfg = compose_config(
        [f"experiment={experiment}", f"paths.data_dir={tmp}/data", f"paths.output_dir={tmp}/out"]
    )
    load_plugins(cfg)
    pl.seed_everything(0)
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    model = hydra.utils.instantiate(cfg.model)
    batch = datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)
    core = model.net.core
    lag_filter = core.frontend
    conv3d = nn.Conv3d(lag_filter.in_channels, lag_filter.out_channels, lag_filter.kernel_size, bias=False)
    conv3d.weight = lag_filter.weight  # the same parameter: the same function
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        out = model.training_step(batch, 0)
        loss = out["loss"] if isinstance(out, dict) else out
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    times: dict[str, list[float]] = {"LagFilter (einsum)": [], "Conv3d": []}
    for _ in range(repeats + 1):  # the first round warms up
        for name, frontend in (("LagFilter (einsum)", lag_filter), ("Conv3d", conv3d)):
            core.frontend = frontend
            step()
            started = time.perf_counter()
            step()
            step()
            times[name].append((time.perf_counter() - started) / 2 * 1e3)
    return {name: values[1:] for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiments", default="v1_single,v1_multidataset")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")  # self.log outside a Trainer
    print(f"{'experiment':<18} {'front end':<20} {'ms/step (each repeat)':<40} {'median':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for experiment in args.experiments.split(","):
            for name, values in step_times(experiment, args.repeats, tmp).items():
                each = ", ".join(f"{v:.0f}" for v in values)
                print(f"{experiment:<18} {name:<20} {each:<40} {statistics.median(values):>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
