"""What DDP costs on one machine: 2 processes × 1 thread (`trainer=ddp_cpu`) against 1 process × 2 threads
(`trainer=cpu torch_threads=2`) on the same work, through the real entry point.

Both runs train the same global batch (DDP: half per process) for the same number of optimizer steps,
with validation and testing off, and the ratio of their training throughputs (EpochHeartbeat's global
samples per second over the training batches, from summary.json: process start-up and the DDP launcher's
second process are not in it) is the row's verdict; the target is >= 0.9. Measured in one sitting,
alternating the two forms `--repeats` times, because this shared machine drifts.

    .venv/bin/python benchmarks/ddp.py                                   # cnn_digits and cifar10_resnet20
    .venv/bin/python benchmarks/ddp.py --experiments cnn_digits --steps 60 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.throughput import data_overrides  # noqa: E402
from tests.helpers import cli_env, compose_config, read_summary  # noqa: E402

FORMS = {
    "2 proc x 1 thread (ddp_cpu)": (["trainer=ddp_cpu", "torch_threads=1"], 2),
    "1 proc x 2 threads (cpu)": (["trainer=cpu", "torch_threads=2"], 1),
}


def fit_throughput(experiment: str, form: list[str], processes: int, steps: int, root: Path) -> float:
    """Global training samples per second over the training batches of a fit of `steps` optimizer steps."""
    cfg = compose_config([f"experiment={experiment}"])
    data, _ = data_overrides(cfg, root / "data", steps * processes)
    global_batch = int(cfg.data.batch_size)  # per process under DDP: half each
    run_name = f"{'ddp' if processes > 1 else 'single'}_{time.monotonic_ns()}"
    command = [
        sys.executable, "-m", "training.run", f"experiment={experiment}", *data, *form,
        f"data.batch_size={global_batch // processes}", f"trainer.max_steps={steps}", "trainer.max_epochs=-1",
        "trainer.limit_val_batches=0", "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false",
        "callbacks.model_summary=null", "test_after_fit=false", f"run_name={run_name}",
    ]  # fmt: skip
    env = {**cli_env(root), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    summary = read_summary(root / "logs" / str(cfg.name) / "runs" / run_name)
    if result.returncode != 0 or summary.get("status") != "finished":
        raise RuntimeError(f"{experiment} {form}: {(result.stderr or result.stdout)[-2000:]}")
    return float(summary["performance"]["samples_per_s"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiments", default="cnn_digits,cifar10_resnet20")
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per fit (default: 40)")
    parser.add_argument("--repeats", type=int, default=2, help="alternating repeats of both forms")
    args = parser.parse_args(argv)
    print(
        f"{'experiment':<20} {'form':<30} {'samples/s (each repeat)':<28} {'median':>8} {'DDP / single':>13}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for experiment in args.experiments.split(","):
            measured: dict[str, list[float]] = {name: [] for name in FORMS}
            for _ in range(args.repeats):
                for name, (form, processes) in FORMS.items():
                    measured[name].append(fit_throughput(experiment, form, processes, args.steps, Path(tmp)))
            medians = {name: statistics.median(values) for name, values in measured.items()}
            ratio = medians["2 proc x 1 thread (ddp_cpu)"] / medians["1 proc x 2 threads (cpu)"]
            for name, values in measured.items():
                each = ", ".join(f"{v:.0f}" for v in values)
                verdict = f"{ratio:.2f}" if name.startswith("2 proc") else ""
                print(f"{experiment:<20} {name:<30} {each:<28} {medians[name]:>8.0f} {verdict:>13}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
