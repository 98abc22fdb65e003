"""Throughput of the v1 data paths: host DataLoader (0 and 2 workers) vs the device-resident path.

Each row builds `MultiDatasetDM` on the same sessions and runs `--steps` training steps (after
`--warmup`) of: next(loader) -> move to the device -> `on_after_batch_transfer` (normalisation, and
for the resident path the window gather) -> a fixed model step of `--compute-ms` milliseconds. The
model step is a sleep: a GPU step leaves the host free, so workers can prefetch meanwhile.

Columns:
  data ms/step     time from asking for the next batch to having it normalised on the device
  samples/s data   windows per second with no model step (--compute-ms 0): the path's ceiling
  samples/s        windows per second with the model step
  data wait        share of each step spent waiting for data (the Heartbeat's perf/data_wait_share)

Sessions: the simulated dataset t1_small (its configs computed from the tier definitions, as
`v1.dataset=t1_small` does), or the dataset-config folder `--dataset-configs`, when its sessions are under
`--data-dir`; `--simulate` simulates them first (about a minute on 2 cores). Otherwise synthetic sessions
shaped like T1 small (6 sessions, 12,000 frames of 32x32, 40 units, lags 8) written to a temp dir.

    .venv/bin/python benchmarks/v1_data.py
    .venv/bin/python benchmarks/v1_data.py --batch-size 64 --steps 100 --compute-ms 50 --simulate
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `python benchmarks/v1_data.py` from anywhere; tests/ is not installed

import torch  # noqa: E402
from pytorch_lightning.utilities import move_data_to_device  # noqa: E402

from datamodules.v1 import MultiDatasetDM  # noqa: E402
from datamodules.v1.dataset_configs import SessionConfig, write_dataset_configs  # noqa: E402
from training.toolkit.errors import UserError  # noqa: E402

T1_SMALL = "t1_small"  # the simulated dataset (MultiDatasetDM's `dataset`)


@dataclass
class Row:
    path: str
    device: str
    workers: int
    data_ms: float = float("nan")
    ceiling: float = float("nan")
    samples_per_s: float = float("nan")
    data_wait: float = float("nan")


def write_synthetic(
    root: Path, sessions: int = 6, frames: int = 12_000, units: int = 40
) -> tuple[Path, Path]:
    """Sessions shaped like T1 small (4-s trials at 60 Hz split 70/15/15); returns (configs, data_dir)."""
    from tests.datamodules.v1.synthetic_sessions import write_synthetic_session

    trial, shape = 240, (32, 32)
    splits = ["train"] * 14 + ["val"] * 3 + ["test"] * 3
    trials = [("gaborium", s, s + trial, splits[(s // trial) % 20]) for s in range(0, frames, trial)]
    configs = []
    for index in range(sessions):
        name = f"synthetic_{index}"
        ids = list(range(units))
        write_synthetic_session(root / "data" / name, name, ids, trials, {"gaborium": (0, frames)}, shape)
        configs.append(SessionConfig(name, name, tuple(ids), "synthetic"))
    parent = {
        "types": ["gaborium"],
        "sampling": {"rate_hz": 60.0},
        "lags": 8,
        "frame_shape": list(shape),
        "transforms": {"cones": False},
        "split": {"train": "train", "val": "val", "test": "test"},
        "data_root": ".",
        "simulate": None,
    }
    return write_dataset_configs(root / "configs", parent, configs), root / "data"


def measure(dm: MultiDatasetDM, device: torch.device, steps: int, warmup: int, compute_s: float) -> tuple:
    """(median data ms per step, samples/s, data-wait share) over `steps` steps after `warmup`."""
    loader = dm.train_dataloader()
    loader.batch_sampler.set_epoch(0)
    iterator = iter(loader)
    waits, totals, samples = [], [], 0
    for step in range(warmup + steps):
        started = time.perf_counter()
        batch = dm.on_after_batch_transfer(move_data_to_device(next(iterator), device), 0)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        fetched = time.perf_counter()
        time.sleep(compute_s)
        if step >= warmup:
            waits.append(fetched - started)
            totals.append(time.perf_counter() - started)
            samples += sum(len(item["robs"]) for item in batch.values())
    del iterator  # stops the workers
    return 1000 * statistics.median(waits), samples / sum(totals), sum(waits) / sum(totals)


def run(args: argparse.Namespace, source: dict[str, str | None], data_dir: Path) -> list[Row]:
    modes = [("host loader", "cpu", 0), ("host loader", "cpu", 2), ("resident", "cpu", 0)]
    if torch.cuda.is_available():
        modes += [("host loader", "cuda", 0), ("host loader", "cuda", 2), ("resident", "cuda", 0)]
    rows = []
    for path, device_name, workers in modes:
        row = Row(path, device_name, workers)
        device = torch.device(device_name)
        for compute_ms in (0.0, args.compute_ms):
            dm = MultiDatasetDM(
                data_dir=str(data_dir),
                **source,
                batch_size=args.batch_size,
                steps_per_epoch=args.warmup + args.steps,
                num_workers=workers,
                pin_memory=device.type == "cuda",
                resident=path == "resident",
                seed=0,
            )
            dm.setup("fit")
            data_ms, rate, wait = measure(dm, device, args.steps, args.warmup, compute_ms / 1000)
            if compute_ms == 0.0:
                row.ceiling = rate
            else:
                row.data_ms, row.samples_per_s, row.data_wait = data_ms, rate, wait
        rows.append(row)
        print(f"  {path} {device_name} workers={workers}: {row.data_ms:.1f} ms data/step", flush=True)
    return rows


def print_table(rows: list[Row], compute_ms: float) -> None:
    header = (
        f"{'path':<12} {'device':<6} {'workers':>7} {'data ms/step':>12} {'samples/s data':>14} "
        f"{f'samples/s (+{compute_ms:g} ms step)':>26} {'data wait':>9}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.path:<12} {row.device:<6} {row.workers:>7} {row.data_ms:>12.2f} {row.ceiling:>14.0f} "
            f"{row.samples_per_s:>26.0f} {100 * row.data_wait:>8.1f}%"
        )


def resolve_sessions(args: argparse.Namespace, scratch: Path) -> tuple[dict[str, str | None], Path, str]:
    """The dataset to benchmark, as MultiDatasetDM's (dataset_configs_path, dataset): `--dataset-configs` or
    the simulated T1 small when its sessions are present (or `--simulate`d), else synthetic sessions."""
    if args.dataset_configs:
        source = {"dataset_configs_path": str(args.dataset_configs), "dataset": None}
    else:
        source = {"dataset_configs_path": None, "dataset": T1_SMALL}
    try:
        dm = MultiDatasetDM(data_dir=str(args.data_dir), **source)
        if args.simulate:
            dm.prepare_data()
        dm.setup("fit")
        return source, args.data_dir, f"{dm.configs.where} ({len(dm.session_names)} sessions)"
    except (UserError, ImportError) as err:
        print(f"  not using {args.dataset_configs or T1_SMALL}: {str(err).splitlines()[0][:200]}")
    configs, data_dir = write_synthetic(scratch)
    return (
        {"dataset_configs_path": str(configs), "dataset": None},
        data_dir,
        "synthetic, shaped like T1 small (6 sessions x 12,000 frames, 32x32, 40 units)",
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset-configs",
        type=Path,
        default=None,
        help="dataset-config folder (default: the simulated dataset t1_small, its sessions under --data-dir)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("VISIONCORE_ROOT", REPO)) / "data",
        help="data.data_dir",
    )
    parser.add_argument(
        "--simulate", action="store_true", help="simulate missing sessions (parent.yaml `simulate`)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=32, help="windows per session per step (default: 32)"
    )
    parser.add_argument("--steps", type=int, default=40, help="measured steps per row (default: 40)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured first steps (default: 5)")
    parser.add_argument(
        "--compute-ms", type=float, default=20.0, help="the fixed model step (default: 20 ms)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default: 1; 0: torch's default)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vc-v1-data-") as scratch:
        source, data_dir, description = resolve_sessions(args, Path(scratch))
        print(
            f"data: {description}; batch {args.batch_size} per session, {args.steps} steps after {args.warmup}, "
            f"torch threads={torch.get_num_threads()}, cpu cores={os.cpu_count()}",
            flush=True,
        )
        rows = run(args, source, data_dir)
    print()
    print_table(rows, args.compute_ms)
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
