"""The GPU check: every GPU configuration for a few steps, the CUDA rows of the benchmarks, the no-sync rule.

On a CUDA machine (`bash benchmarks/gpu_check.sh`, under 8 minutes on one GPU) it writes one markdown file
(`--out`, default `gpu_check.md`) with three tables:

1. **GPU configurations**: every `conf/experiment/*_gpu.yaml` and the v1 experiments at `size=full`, each
   through the real entry point (`python -m training.run`, benchmarks/throughput.py) for `--steps`
   training batches with `trainer.precision=bf16-mixed`: steady ms/batch, samples/s, data wait and peak
   memory from the Heartbeat. Generated sets are cut to what the steps need (`SMALL_SETS`): the check is
   about the configuration (shapes, precision, memory at the real batch), not the data. The v1 datasets are
   simulated first with every core (`simulate_v1_datasets`, its times above the table).
2. **Efficiency on the device** (benchmarks/efficiency.py with `--sync-check`): the same configurations'
   training steps with nothing attached, MFU against a bf16 matmul on the GPU, the top CUDA kernels, and
   the timed steps under `torch.cuda.set_sync_debug_mode("error")`: a host-device sync inside a step fails
   its row with the line that made it.
3. **v1 data paths** (benchmarks/v1_data.py): host loader against device-resident batches, CUDA rows.

`--cpu` runs the same pipeline on the CPU (no bf16, no sync check: those need CUDA) for the experiments
given with `--experiments`: how the suite keeps this script working without a GPU.

    bash benchmarks/gpu_check.sh                                   # on the GPU machine
    .venv/bin/python benchmarks/gpu_check.py --cpu --experiments cnn_digits --steps 3 --out /tmp/check.md
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `python benchmarks/gpu_check.py` from anywhere; tests/ is not installed

import torch  # noqa: E402

from benchmarks import efficiency, throughput  # noqa: E402
from tests.helpers import CONF_DIR, compose_config  # noqa: E402

V1_FULL = ("v1_single", "v1_multidataset")
# Generated sets cut to a few hundred items: rendering the GPU sizes' full sets takes longer than the check.
SMALL_SETS = {
    "design": ["data.num_train=512", "data.num_val=64", "data.num_test=64"],
    "ukiyoe": ["data.num_train=512", "data.num_val=64", "data.num_test=64"],
}


def gpu_configurations() -> list[tuple[str, list[str]]]:
    """(experiment, overrides) of every GPU configuration: the `*_gpu` experiments and v1 at size=full."""
    named = sorted(path.stem for path in (CONF_DIR / "experiment").glob("*_gpu.yaml"))
    runs = [(name, list(SMALL_SETS.get(name.split("_", 1)[0], []))) for name in named]
    return runs + [(name, ["size=full"]) for name in V1_FULL]


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def simulate_v1_datasets(runs: list[tuple[str, list[str]]], root: Path) -> list[str]:
    """Simulate the v1 configurations' datasets under `root` with every core before anything is timed: one run
    simulating T1 full's 20 sessions alone outlasted the check's timeout. One line per dataset."""
    from datamodules.v1.simulator import simulate_tier
    from datamodules.v1.simulator.configs import NAME

    workers, lines = os.cpu_count() or 1, []
    for experiment, overrides in runs:
        dataset = compose_config([f"experiment={experiment}", *overrides]).get("v1", {}).get("dataset")
        match = NAME.fullmatch(str(dataset)) if dataset else None
        if match is None:
            continue
        tier, size, seed = match["tier"].upper(), match["size"], int(match["seed"] or 0)
        started = time.perf_counter()
        simulate_tier(tier, size, seed, root / "data", workers=workers)
        seconds = time.perf_counter() - started
        lines.append(
            f"- {experiment} {' '.join(overrides)}: {dataset} simulated in {seconds:.0f} s ({workers} processes)"
        )
        print(f"  simulated {dataset}: {seconds:.0f} s", flush=True)
    return lines


def run_configurations(runs: list[tuple[str, list[str]]], args: argparse.Namespace, root: Path) -> str:
    """Table 1: each configuration through `python -m training.run` for `--steps` batches."""
    rows = []
    for experiment, overrides in runs:
        options = argparse.Namespace(
            data_dir=root / "data",
            batches=args.steps,
            threads=0,  # a GPU run's host side: torch's default
            timeout=args.timeout,
            overrides=[*overrides, *args.precision],
        )
        row = throughput.run_experiment(experiment, options, root)
        print(f"  run {experiment} {' '.join(overrides)}: {row.error or 'ok'}", flush=True)
        rows.append(
            [
                experiment,
                " ".join(options.overrides) or "-",
                row.error or "ok",
                _fmt(row.steady_ms, ".1f"),
                _fmt(row.steady_samples_per_s, ".0f"),
                _fmt(None if row.data_wait is None else 100 * row.data_wait, ".1f"),
                _fmt(row.peak_mem_mb, ".0f"),
                _fmt(row.wall_s, ".0f"),
            ]
        )
    header = ["experiment", "overrides", "status", "steady ms/batch", "samples/s", "data wait %", "peak MiB"]
    return _markdown(header + ["wall s"], rows)


def measure_steps(runs: list[tuple[str, list[str]]], args: argparse.Namespace, root: Path) -> str:
    """Table 2: benchmarks/efficiency.py's rows for the same configurations, sync-checked on CUDA."""
    rows = []
    for experiment, overrides in runs:
        options = efficiency.parse_args(
            ["--steps", str(args.steps), "--data-dir", str(root / "data"), "--markdown"]
            + (["--sync-check"] if not args.cpu else [])
            + [*overrides, *args.precision]
        )
        row = efficiency.measure(experiment, options, root / "efficiency")
        row.experiment = " ".join([experiment, *overrides])
        print(f"  step {experiment}: {row.error or 'ok'}", flush=True)
        rows.append(row)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        efficiency.print_table(rows, markdown=True)
    return printed.getvalue().strip()


def v1_data_paths(args: argparse.Namespace, root: Path) -> str:
    """Table 3: benchmarks/v1_data.py's output (its CUDA rows appear when a GPU is present), on T1 small's
    sessions when table 1 simulated them under `root`, else on synthetic ones of its shape."""
    script = str(REPO / "benchmarks" / "v1_data.py")
    command = [sys.executable, script, "--steps", str(args.steps), "--data-dir", str(root / "data")]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return f"timed out after {args.timeout:.0f} s"
    text = (
        result.stdout.strip()
        if result.returncode == 0
        else f"exit {result.returncode}: {result.stderr[-800:]}"
    )
    return "```\n" + text + "\n```"


def machine() -> str:
    if torch.cuda.is_available():
        device = f"{torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}"
    else:
        device = f"CPU only ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    return f"{device}; torch {torch.__version__}; Python {platform.python_version()}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check.md"), help="the results file")
    parser.add_argument("--steps", type=int, default=12, help="training batches per configuration")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds per run")
    parser.add_argument(
        "--experiments",
        default=None,
        help="comma-separated experiments instead of every GPU configuration (with --cpu: what to smoke-test)",
    )
    parser.add_argument("--cpu", action="store_true", help="run on the CPU: no bf16, no sync check")
    args = parser.parse_args(argv)
    if not args.cpu and not torch.cuda.is_available():
        parser.error("no CUDA device here; --cpu runs the same pipeline on the CPU")
    args.precision = (
        ["trainer.accelerator=cpu", "trainer.precision=32"] if args.cpu else ["trainer.precision=bf16-mixed"]
    )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs = [(name, []) for name in args.experiments.split(",")] if args.experiments else gpu_configurations()
    started = time.perf_counter()
    efficiency.quiet()
    with tempfile.TemporaryDirectory(prefix="vc-gpu-check-") as tmp:
        root = Path(tmp)
        simulated = simulate_v1_datasets(runs, root)
        table = run_configurations(runs, args, root)
        sections = [
            (
                "GPU configurations through `python -m training.run`",
                "\n".join([*simulated, "", table]).strip(),
            ),
            ("Training steps on the device (efficiency.py --sync-check)", measure_steps(runs, args, root)),
            ("v1 data paths (v1_data.py)", v1_data_paths(args, root)),
        ]
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = [f"# GPU check, {stamp}", "", machine(), f"`{' '.join(sys.argv)}`", ""]
    for title, table in sections:
        text += [f"## {title}", "", table, ""]
    text.append(f"total {time.perf_counter() - started:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(text) + "\n")
    print(f"wrote {args.out} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
