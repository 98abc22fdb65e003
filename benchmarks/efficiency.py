"""How much of this machine's compute each system's training step uses, and what holds it back.

For each experiment (default: one per system, `DEFAULT_EXPERIMENTS`; or `--experiments a,b`) at its CPU
size, the parts are built as `python -m training.run experiment=NAME` builds them: the config composed
like tests/helpers.py `compose_config` (data and run directory in a temp folder, or `--data-dir`), the
system's plugins loaded, `pl.seed_everything(cfg.seed)`, `hydra.utils.instantiate(cfg.data)` and
`(cfg.model)`, `datamodule.prepare_data()`. Then one `trainer.fit(model, datamodule=datamodule)` runs with
the experiment's own Trainer config (`cfg.trainer`: precision, gradient clipping, ...) and nothing attached:
no callbacks, no logger, no checkpoints, no validation, no progress bar or summary. So Lightning does
setup("fit"), the batch transfer (`on_before_batch_transfer`, `transfer_batch_to_device`,
`on_after_batch_transfer`, the datamodule's or the module's) and the step exactly as a run does,
automatic optimisation (training_step + backward + clipping + optimizer step + zero_grad) and manual
optimisation alike (the ukiyoe GAN's training_step: G forward, one D step, one G step, EMA update).

The one instrument is a Lightning `Profiler` (`StepProbe`, benchmarks/step_probe.py): Lightning already
calls it around every fetch, transfer and step, so it adds two clock reads per action. On a CUDA device it
synchronises around each step, measures the reference matmul on the device in the trainer's precision
(bf16 for bf16-mixed), ranks CUDA kernels, and `--sync-check` runs the timed steps under
`torch.cuda.set_sync_debug_mode("error")` (benchmarks/gpu_check.py uses it). Steps run in this order:
`--warmup` steps (not measured), `--steps` timed steps, one step under `FlopCounterMode`,
`--profile-steps` steps under `torch.profiler`; then the probe stops the fit.

Columns:
  GFLOP/step   matmul/conv/attention FLOPs of one training step (forward + loss + backward; the optimizer
               adds none that FlopCounterMode counts), `torch.utils.flop_counter.FlopCounterMode`
  ms/step      median over the timed steps of Lightning's `run_training_batch` (the optimizer step included)
  GFLOP/s      GFLOP/step / ms/step
  mm GFLOP/s   this machine's fp32 matmul throughput: a `--matmul-size`^3 `torch.mm` in the same process at
               the same thread count, the best of 3 after a warm-up, timed just before the experiment's timed
               steps (a shared VM's speed drifts by 20% within minutes: each row gets the speed of its moment)
  MFU          GFLOP/s / mm GFLOP/s
  data wait    time getting the next batch (the loader's `next` + batch transfer hooks) / (that + step),
               summed over the timed steps
  in ops       share of the profiled steps' wall time spent inside operators (self CPU time of every `aten::`
               op); the rest is Python: Lightning's loop, the module's own code, the optimizer's per-tensor loop
  top ops      the 3 operators with the most self CPU time in the profiled steps (`torch.profiler`), as a share
               of those steps' wall time
  limit        for rows under 40% MFU, what takes the largest share of the step: the top operator, or "host
               overhead" when the time outside operators is larger (benchmarks/README.md explains each row)

cifar10_resnet20's CIFAR-10 files are not shipped: when they are not under the data dir, procedural 32x32
RGB gratings with its shape, class count and loader settings stand in (as in throughput.py). An experiment
whose data is missing gets a row that says so.

    .venv/bin/python benchmarks/efficiency.py                       # 7 experiments, 1 thread, ~2.5 min on 2 cores
    .venv/bin/python benchmarks/efficiency.py --experiments cnn_digits,v1_single --steps 20
    .venv/bin/python benchmarks/efficiency.py --data-dir data --markdown   # reuse generated data; a markdown table
    .venv/bin/python benchmarks/efficiency.py --experiments design_encoder data.batch_size=32   # any override
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # torch.profiler's C++ side: no start/stop lines on stderr
REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `python benchmarks/efficiency.py` from anywhere; tests/ is not installed

import hydra  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from omegaconf import DictConfig, open_dict  # noqa: E402

from benchmarks.step_probe import StepProbe, top_operators  # noqa: E402
from benchmarks.throughput import CLASSIFIER, data_overrides  # noqa: E402
from tests.helpers import compose_config  # noqa: E402
from training.plugins import load_plugins  # noqa: E402
from training.toolkit.errors import UserError  # noqa: E402

DEFAULT_EXPERIMENTS = (
    "cnn_digits",
    "cifar10_resnet20",
    "v1_single",
    "v1_multidataset",
    "design_encoder",
    "design_decoder",
    "ukiyoe_gan_nca",
)
LIMIT_BELOW = 0.40  # MFU under which the `limit` column names the top operator


# ------------------------------------------------------------------------------------------ measuring
@dataclass
class Row:
    experiment: str
    model: str = "?"
    batch: str = "?"
    data: str = "?"
    step: str = "?"  # what the timed step holds
    flops: float | None = None
    step_ms: float | None = None
    data_wait: float | None = None
    top_ops: list[tuple[str, float]] = field(default_factory=list)
    top_detail: str = ""
    in_ops: float | None = None  # share of the profiled steps' wall time inside operators
    peak: float | None = None  # FLOP/s of the reference matmul
    device: str = "cpu"  # where the step ran, with the reference matmul's dtype when not fp32
    steps: int = 0
    error: str | None = None

    @property
    def gflops_per_s(self) -> float | None:
        if self.flops is None or not self.step_ms:
            return None
        return self.flops / (self.step_ms / 1000.0) / 1e9

    @property
    def mfu(self) -> float | None:
        achieved = self.gflops_per_s
        return None if achieved is None or not self.peak else achieved * 1e9 / self.peak

    @property
    def limit(self) -> str:
        if self.mfu is None or self.mfu >= LIMIT_BELOW or not self.top_ops:
            return "-"
        name, share = self.top_ops[0]
        if self.in_ops is not None and 1.0 - self.in_ops > share:
            return f"host overhead ({1.0 - self.in_ops:.0%} outside ops)"
        return name


# ------------------------------------------------------------------------------------ building a run
def compose(
    experiment: str, data_dir: Path, run_dir: Path, batches: int, overrides: list[str] | None = None
) -> tuple[DictConfig, str]:
    """The experiment's config with data and outputs under the given folders, and where its data comes
    from (a cnn experiment whose files are absent gets procedural data shaped like it, as throughput.py)."""
    base = [f"experiment={experiment}", f"paths.data_dir={data_dir}", f"paths.log_dir={run_dir / 'logs'}"]
    base += overrides or []
    cfg = compose_config(base)
    source = _data_label(cfg.data)
    if cfg.model.get("_target_") == CLASSIFIER:
        extra, source = data_overrides(cfg, data_dir, batches)
        if source != str(cfg.data.dataset):
            source = f"{source} ({cfg.data.dataset} absent)"
        cfg = compose_config(base + [o for o in extra if not o.startswith("data.data_dir=")])
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)  # `${hydra:runtime.output_dir}` exists only inside a Hydra job
        del cfg["hydra"]
    return cfg, source


def _data_label(data: DictConfig) -> str:
    """Where a non-cnn experiment's data comes from: a v1 dataset (simulated or a lab's configs), the
    ukiyoe source or design's generated shards, with the image size."""
    if data.get("dataset_configs_path"):
        return f"configs {Path(str(data.dataset_configs_path)).name}"
    if data.get("_target_", "").startswith("datamodules.v1") and data.get("dataset"):
        return f"{data.dataset} (simulated)"
    size = f" {data.resolution}x{data.resolution}" if data.get("resolution") else ""
    return f"{data.get('source') or 'generated'}{size}"


def _trainer(cfg: DictConfig, probe: StepProbe, run_dir: Path) -> pl.Trainer:
    """The experiment's Trainer config with nothing attached, training steps only, stopped by `probe`."""
    return hydra.utils.instantiate(
        cfg.trainer,
        callbacks=[],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        profiler=probe,
        default_root_dir=str(run_dir),
        min_epochs=0,
        max_epochs=10_000,  # the probe stops the fit; epochs roll over if the loader is short
        max_steps=-1,  # a manual-optimisation step counts one global step per optimizer
        limit_train_batches=None,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def _where(error: BaseException) -> str:
    """` (at file:line)` of the innermost traceback frame in this repository's code (not a library's):
    where a sync-checked step synchronised."""
    frames = []
    traceback = error.__traceback__
    while traceback is not None:
        frames.append(traceback.tb_frame.f_code.co_filename + f":{traceback.tb_lineno}")
        traceback = traceback.tb_next
    ours = [
        f for f in frames if f.startswith(str(REPO)) and "site-packages" not in f and "/benchmarks/" not in f
    ]
    return f" (at {Path(ours[-1]).relative_to(REPO)})" if ours else ""


def _describe_step(model: pl.LightningModule, cfg: DictConfig) -> str:
    if not model.automatic_optimization:
        if hasattr(model, "discriminator_step"):
            return "manual: training_step (D step, G step, EMA)"
        return "manual: training_step"
    clip = cfg.trainer.get("gradient_clip_val")
    return "auto: fwd+loss+bwd+" + ("clip+" if clip else "") + "opt"


def _batch_label(cfg: DictConfig, datamodule: Any) -> str:
    size = int(cfg.data.batch_size)
    sessions = getattr(datamodule, "session_names", None)
    return f"{size}x{len(sessions)}s" if sessions else str(size)


def measure(experiment: str, args: argparse.Namespace, tmp: Path) -> Row:
    """One row: build the experiment's parts as a run does and measure its training step."""
    row = Row(experiment)
    run_dir = tmp / "runs" / experiment
    data_dir = (args.data_dir or tmp / "data").resolve()
    probe = StepProbe(args.warmup, args.steps, args.profile_steps, args.matmul_size, args.sync_check)
    try:
        cfg, row.data = compose(experiment, data_dir, run_dir, probe.total, args.overrides)
    except Exception as error:  # an unknown experiment, a config that does not compose
        row.error = f"config: {_first_line(error)}"
        return row
    load_plugins(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    try:
        datamodule = hydra.utils.instantiate(cfg.data)
        model = hydra.utils.instantiate(cfg.model)
        datamodule.prepare_data()  # generated data sets are written here once (cached under the data dir)
    except (FileNotFoundError, UserError) as error:
        row.error = f"data missing: {_first_line(error)}"
        return row
    except Exception as error:  # hydra wraps what a constructor raised
        cause = error.__cause__ or error
        kind = "data missing" if isinstance(cause, (FileNotFoundError, UserError)) else "build failed"
        row.error = f"{kind}: {_first_line(cause)}"
        return row
    net = getattr(model, "net", None)
    row.model = type(net if isinstance(net, torch.nn.Module) else model).__name__
    row.step = _describe_step(model, cfg)
    trainer = _trainer(cfg, probe, run_dir)
    probe.trainer = trainer
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # any table a hook prints before the first step
            trainer.fit(model, datamodule=datamodule)
    except Exception as error:
        row.error = f"fit failed at step {probe.steps}: {_first_line(error)}{_where(error)}"
        return row
    finally:
        probe.close()
    row.batch = _batch_label(cfg, datamodule)
    row.steps, row.peak, row.device = len(probe.step_ms), probe.peak, str(probe.device)
    if probe.peak_dtype != torch.float32:
        row.device += f" {str(probe.peak_dtype).removeprefix('torch.')}"
    if probe.steps < probe.total:
        row.error = f"the fit ended after {probe.steps} of {probe.total} steps"
        return row
    row.flops = float(probe.flops or 0)
    row.step_ms = statistics.median(probe.step_ms)
    data, step = math.fsum(probe.data_ms), math.fsum(probe.step_ms)
    row.data_wait = data / (data + step)
    if probe.torch_profile is not None:
        row.top_ops, row.top_detail, row.in_ops = top_operators(
            probe.torch_profile, probe.profiled_s, device=probe.on_cuda
        )
    return row


# ------------------------------------------------------------------------------------------- output
def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _pct(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(100 * value, spec) + "%"


def _cells(row: Row) -> list[str]:
    ops = ", ".join(f"{name} {share:.0%}" for name, share in row.top_ops) or "-"
    return [
        row.experiment,
        row.model,
        row.batch,
        row.data,
        row.step,
        _fmt(None if row.flops is None else row.flops / 1e9, ".3f"),
        _fmt(row.step_ms, ".1f"),
        _fmt(row.gflops_per_s, ".2f"),
        _fmt(None if row.peak is None else row.peak / 1e9, ".1f")
        + ("" if row.device == "cpu" else f" ({row.device})"),
        _pct(row.mfu),
        _pct(row.data_wait),
        _pct(row.in_ops, ".0f"),
        ops,
        row.limit,
    ]


HEADER = [
    "experiment",
    "model",
    "batch",
    "data",
    "step measured",
    "GFLOP/step",
    "ms/step",
    "GFLOP/s",
    "mm GFLOP/s",
    "MFU",
    "data wait",
    "in ops",
    "top ops by self time (share of step)",
    "limit",
]
NUMERIC = {"GFLOP/step", "ms/step", "GFLOP/s", "mm GFLOP/s", "MFU", "data wait", "in ops"}


def print_table(rows: list[Row], markdown: bool = False) -> None:
    cells = [_cells(row) if not row.error else None for row in rows]
    if markdown:
        print("| " + " | ".join(HEADER) + " |")
        print("|" + "|".join("---:" if h in NUMERIC else "---" for h in HEADER) + "|")
        for row, cell in zip(rows, cells, strict=True):
            if cell is None:
                print(f"| {row.experiment} | {row.error} |" + " |" * (len(HEADER) - 2))
            else:
                print("| " + " | ".join(cell) + " |")
        return
    widths = [max([len(h)] + [len(c[i]) for c in cells if c]) for i, h in enumerate(HEADER)]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if h in NUMERIC else v.ljust(w) for v, w, h in zip(values, widths, HEADER, strict=True)
        ).rstrip()

    print(line(HEADER))
    print("-" * len(line(HEADER)))
    for row, cell in zip(rows, cells, strict=True):
        print(line(cell) if cell else f"{row.experiment.ljust(widths[0])}  {row.error}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--experiments",
        default=None,
        help="comma-separated names (default: " + ",".join(DEFAULT_EXPERIMENTS) + ")",
    )
    parser.add_argument("--steps", type=int, default=10, help="timed steps per experiment (default: 10)")
    parser.add_argument("--warmup", type=int, default=3, help="steps before the timed ones (default: 3)")
    parser.add_argument(
        "--profile-steps", type=int, default=3, help="steps under torch.profiler (default: 3)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1; see README)")
    parser.add_argument(
        "--matmul-size", type=int, default=2048, help="side of the reference mm (default: 2048)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where data is read and generated data is cached (default: a temp folder, generated afresh)",
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.add_argument(
        "--sync-check",
        action="store_true",
        help="on CUDA: run the timed steps under torch.cuda.set_sync_debug_mode('error'); a host-device "
        "sync inside a training step fails the row at the line that made it",
    )
    parser.add_argument("overrides", nargs="*", help="extra key=value overrides for every experiment")
    args = parser.parse_args(argv)
    if min(args.steps, args.warmup, args.profile_steps, args.threads) < 1:
        parser.error("--steps, --warmup, --profile-steps and --threads must be >= 1")
    return args


def quiet() -> None:
    warnings.filterwarnings("ignore")  # Lightning's advice about workers, logging intervals, val loops
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet()
    torch.set_num_threads(args.threads)
    experiments = args.experiments.split(",") if args.experiments else list(DEFAULT_EXPERIMENTS)
    started = time.perf_counter()
    print(
        f"{len(experiments)} experiments, {args.warmup} warm-up + {args.steps} timed + 1 FLOP-counted + "
        f"{args.profile_steps} profiled steps each; torch threads={torch.get_num_threads()}; torch "
        f"{torch.__version__}, lightning {pl.__version__}; MFU's reference: the best of 3 fp32 "
        f"{args.matmul_size}^3 torch.mm, measured just before each experiment's timed steps",
        flush=True,
    )
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="vc-efficiency-") as tmp:
        for experiment in experiments:
            begun = time.perf_counter()
            row = measure(experiment, args, Path(tmp))
            rows.append(row)
            status = row.error or f"{_fmt(row.step_ms, '.1f')} ms/step, MFU {_fmt(row.mfu, '.3f')}"
            print(f"  {experiment}: {status} ({time.perf_counter() - begun:.0f} s)", flush=True)
            assert torch.get_num_threads() == args.threads, f"{experiment} changed torch's thread count"
    print()
    print_table(rows, markdown=args.markdown)
    details = [f"  {row.experiment}: {row.top_detail}" for row in rows if row.top_detail]
    if details:
        print("\ntop operator's largest input-shape group:\n" + "\n".join(details))
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")
    return 1 if any(row.error for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
