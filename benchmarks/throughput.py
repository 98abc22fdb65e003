"""Training throughput of every system's experiments, through the real entry point (`python -m training.run`).

For each experiment (default: every cnn experiment, i.e. every `conf/experiment/` whose model is the cnn
`ImageClassifierModel`, and `SYSTEM_EXPERIMENTS` of v1, design and ukiyoe; or `--experiments a,b`) this
runs one short fit in a subprocess, with `VISIONCORE_ROOT` in a temp dir:

    python -m training.run experiment=NAME trainer.max_epochs=1 trainer.limit_train_batches=N
        trainer.limit_val_batches=2 callbacks.heartbeat.every_n_steps=1 test_after_fit=false ...

A cnn experiment uses its own dataset when the files are under `--data-dir` (default
`$VISIONCORE_ROOT/data`, else `./data`; digits ship with scikit-learn); otherwise procedural gratings
with the experiment's input shape, class count and batch size stand in (no download). The other systems
generate their data (simulated V1 sessions, rendered designs, procedural prints) into the temp root once,
shared by all runs. Loader settings (workers, pinning, on_device) stay the experiment's.

It prints one row per experiment:
  params          `params` of summary.json
  samples/s       `performance.samples_per_s` of summary.json (EpochHeartbeat: all N batches, first included)
  steady ms/batch median of the Heartbeat's `perf/ms_per_batch` in metrics.csv, first interval skipped
  steady samples/s median of the Heartbeat's `perf/samples_per_s` (v1: windows over all sessions)
  data wait       mean `perf/data_wait_share` (Heartbeat: the main process's time inside the train loader's
                  `next()` / interval time), first interval skipped
  wall s          the subprocess, start-up, data generation and validation included

    .venv/bin/python benchmarks/throughput.py                     # every system, ~8 min on 2 cores
    .venv/bin/python benchmarks/throughput.py --experiments cifar10_resnet20,cnn_digits --batches 20
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `python benchmarks/throughput.py` from anywhere; tests/ is not installed

from omegaconf import DictConfig  # noqa: E402

from tests.helpers import CONF_DIR, cli_env, compose_config, read_summary  # noqa: E402

CLASSIFIER = "models.cnn.module.ImageClassifierModel"
RUN_NAME = "throughput"
# The other systems' trainable experiments at their CPU size (the ones that need no earlier stage's
# checkpoint); their data is generated on first use.
SYSTEM_EXPERIMENTS = (
    "v1_single",
    "v1_multidataset",
    "v1_realistic",
    "v1_cones",
    "v1_pretrain",
    "design_encoder",
    "design_abstractor",
    "design_decoder",
    "ukiyoe_gan_nca",
    "ukiyoe_nca_grow",
)


@dataclass
class Row:
    experiment: str
    model: str
    data: str
    batch_size: int
    params: int | None = None
    samples_per_s: float | None = None
    steady_ms: float | None = None
    data_wait: float | None = None
    wall_s: float | None = None
    error: str | None = None

    steady_samples_per_s: float | None = None
    peak_mem_mb: float | None = None


def cnn_experiments() -> list[str]:
    """Experiments whose model is the cnn ImageClassifierModel (composed, not guessed from the name)."""
    names = sorted(path.stem for path in (CONF_DIR / "experiment").glob("*.yaml"))
    return [
        name for name in names if compose_config([f"experiment={name}"]).model.get("_target_") == CLASSIFIER
    ]


def real_data_present(cfg: DictConfig, data_dir: Path) -> bool:
    """True when the experiment's own training split loads from `data_dir` without a download."""
    from datamodules.cnn.datasets import DataNotFoundError, load_source

    data = cfg.data
    if data.dataset == "procedural":
        return True
    try:
        load_source(
            data.dataset,
            "train",
            str(data_dir),
            False,
            dict(data.get("procedural") or {}),
            dict(data.get("image_folder") or {}),
        )
    except (DataNotFoundError, FileNotFoundError):
        return False
    return True


def data_overrides(cfg: DictConfig, data_dir: Path, batches: int) -> tuple[list[str], str]:
    """Overrides that point a cnn dataset run at the real data, or at procedural data shaped like it; the
    other systems' data (and a classifier on it, e.g. ukiyoe_features) is generated: no overrides."""
    if cfg.model.get("_target_") != CLASSIFIER or "dataset" not in cfg.data:
        data = cfg.data
        label = data.get("dataset") or data.get("source") or "generated"
        size = data.get("resolution") or data.get("image_size")
        return [], f"{label} {size}x{size}" if size else str(label)
    loader = [
        f"data.batch_size={cfg.data.batch_size}",
        f"data.num_workers={cfg.data.num_workers}",
        f"data.pin_memory={cfg.data.pin_memory}",
        f"data.persistent_workers={cfg.data.persistent_workers}",
    ]
    if real_data_present(cfg, data_dir):
        return [f"data.data_dir={data_dir.resolve()}"], str(cfg.data.dataset)
    channels, size, _ = (int(n) for n in cfg.data.input_shape)
    # enough images for `batches` training batches after the 20% test and 10% validation hold-outs
    samples = math.ceil((batches + 2) * int(cfg.data.batch_size) / (0.8 * (1 - cfg.data.val_fraction)))
    return [
        "data=procedural",
        f"data.procedural.channels={channels}",
        f"data.procedural.image_size={size}",
        f"data.procedural.num_classes={int(cfg.data.num_classes)}",
        f"data.procedural.num_samples={samples}",
        *loader,
    ], f"procedural {channels}x{size}x{size}"


def heartbeat_rows(metrics_csv: Path) -> list[dict[str, float]]:
    """The Heartbeat's `perf/*` rows of a run's metrics.csv, in step order."""
    if not metrics_csv.is_file():
        return []
    rows = []
    with metrics_csv.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("perf/ms_per_batch"):
                rows.append(
                    {key: float(value) for key, value in row.items() if key.startswith("perf/") and value}
                )
    return rows


def run_experiment(experiment: str, args: argparse.Namespace, root: Path) -> Row:
    cfg = compose_config([f"experiment={experiment}", *args.overrides])
    net = cfg.model.get("net") or {}
    model = str(net.get("_target_") or cfg.model.get("_target_", "?")).rsplit(".", 1)[-1]
    data, source = data_overrides(cfg, args.data_dir, args.batches)
    row = Row(experiment, model, source, int(cfg.data.get("batch_size") or 0))
    command = [
        sys.executable,
        "-m",
        "training.run",
        f"experiment={experiment}",
        *data,
        "trainer.max_epochs=1",
        f"trainer.limit_train_batches={args.batches}",
        "trainer.limit_val_batches=2",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false",
        "callbacks.heartbeat.every_n_steps=1",
        "test_after_fit=false",
        f"run_name={RUN_NAME}",
        *args.overrides,
    ]
    env = cli_env(root)
    if args.threads > 0:
        env["OMP_NUM_THREADS"] = str(args.threads)
    else:
        env.pop("OMP_NUM_THREADS", None)  # torch's default: one thread per core
    started = time.perf_counter()
    try:
        result = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=args.timeout
        )
    except subprocess.TimeoutExpired:
        row.error = f"timed out after {args.timeout:.0f} s"
        return row
    row.wall_s = time.perf_counter() - started
    run_dir = root / "logs" / str(cfg.name) / "runs" / RUN_NAME
    if result.returncode != 0 or not (run_dir / "summary.json").is_file():
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        row.error = f"exit {result.returncode}: " + " | ".join(tail)
        return row
    summary: dict[str, Any] = read_summary(run_dir)
    row.params = summary.get("params")
    row.samples_per_s = (summary.get("performance") or {}).get("samples_per_s")
    beats = heartbeat_rows(run_dir / "metrics.csv")
    steady = beats[1:] or beats  # the first interval holds the first batch (kernel selection, allocation)
    if steady:
        row.steady_ms = statistics.median(beat["perf/ms_per_batch"] for beat in steady)
        row.steady_samples_per_s = statistics.median(beat["perf/samples_per_s"] for beat in steady)
        row.peak_mem_mb = max(beat.get("perf/peak_mem_mb", math.nan) for beat in beats)
        row.data_wait = statistics.fmean(beat["perf/data_wait_share"] for beat in steady)
    return row


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'experiment':<22} {'model':<12} {'data':<22} {'batch':>5} {'params':>9} {'samples/s':>10} "
        f"{'steady ms/batch':>15} {'steady samples/s':>16} {'data wait':>9} {'wall s':>7}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        if row.error:
            print(f"{row.experiment:<22} {row.model:<12} {row.data:<22} FAILED: {row.error}")
            continue
        params = (
            "-"
            if not row.params
            else f"{row.params / 1e6:.2f}M"
            if row.params >= 1e5
            else f"{row.params / 1e3:.1f}K"
        )
        wait = f"{100 * row.data_wait:.1f}%" if row.data_wait is not None else "-"
        print(
            f"{row.experiment:<22} {row.model:<12} {row.data:<22} {row.batch_size or '-':>5} {params:>9} "
            f"{_fmt(row.samples_per_s, '.1f'):>10} {_fmt(row.steady_ms, '.1f'):>15} "
            f"{_fmt(row.steady_samples_per_s, '.1f'):>16} {wait:>9} {_fmt(row.wall_s, '.0f'):>7}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--experiments",
        default=None,
        help="comma-separated names (default: every cnn one, then " + ",".join(SYSTEM_EXPERIMENTS) + ")",
    )
    parser.add_argument("--batches", type=int, default=5, help="training batches per run (default: 5)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OMP_NUM_THREADS for the runs (default: 1, reproducible on shared machines where two OpenMP "
        "threads stall whenever a neighbour takes a core; 0: torch's default, one per core)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("VISIONCORE_ROOT", REPO)) / "data",
        help="where real datasets are looked for (default: $VISIONCORE_ROOT/data or ./data)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run (default: 300)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs under this folder")
    parser.add_argument("overrides", nargs="*", help="extra key=value overrides for every run")
    args = parser.parse_args(argv)
    if args.batches < 2:
        parser.error("--batches must be >= 2 (the first heartbeat interval is skipped)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    experiments = (
        args.experiments.split(",") if args.experiments else cnn_experiments() + list(SYSTEM_EXPERIMENTS)
    )
    print(
        f"{len(experiments)} experiments, {args.batches} training batches each, "
        f"torch threads={args.threads or os.cpu_count()}, cpu cores={os.cpu_count()}",
        flush=True,
    )
    started = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="vc-throughput-") as tmp:
        root = args.keep or Path(tmp)
        for experiment in experiments:
            row = run_experiment(experiment, args, root)
            rows.append(row)
            status = row.error or f"{_fmt(row.steady_ms, '.1f')} ms/batch, wall {_fmt(row.wall_s, '.0f')} s"
            print(f"  {experiment}: {status}", flush=True)
    print()
    print_table(rows)
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")
    return 1 if any(row.error for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
