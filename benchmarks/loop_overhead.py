"""Loop overhead: a plain PyTorch loop vs a bare Lightning loop vs VisionCore's configured Lightning loop.

All three train the same network (built from `conf/model/<--model>.yaml`, same initial weights) on the
same data path (the cnn datamodule's `ResumableLoader` over procedural 32x32 RGB gratings, no
augmentation, main-process loading), with the same `torch.set_num_threads`:

  (a) plain       zero_grad / forward / cross-entropy / train-accuracy update / backward / step
  (b) lightning   `pl.Trainer(logger=False)`, no checkpointing, progress bar, model summary or validation,
                  training `models.cnn.classifier.ImageClassifier` (whose `training_step` does what (a)
                  does, plus `self.log`)
  (c) visioncore  (b) plus every callback of `conf/callbacks/default.yaml` and the CSV logger, composed
                  from the real config (`experiment=cnn_digits`, so `log_every_n_steps=10`) and built the
                  way `training.tasks` builds it (atomic checkpoint IO), run directory in a temp dir

Measurement. On a shared machine the speed of one core drifts by 10-30% within seconds, which swamps a
few-percent overhead if the loops run one after another. So each repeat runs the three loops in
lockstep: each in its own worker thread, taking turns one optimizer step at a time (round-robin, order
rotated every round), and a loop's clock runs only during its own turns. A step's time is from the end of the
loop's previous step to the end of this one, so data loading, hooks, logging and callbacks between steps
are all counted. The first `--warmup` steps are skipped. Each repeat gives ms/step per loop (mean over
its measured steps); the table shows the median over `--repeats`, and the verdict compares (c)/(a) with
the target (<= 1.05, DESIGN.md "Performance rules"). The median of the per-step paired ratios (step i of
(c) over step i of (a)) is printed as a cross-check.

`--breakdown` adds one instrumented run of (c) that times every callback's per-step hooks and the logger
calls, to show what costs what; it runs on its own whenever (c) misses the target.

    .venv/bin/python benchmarks/loop_overhead.py                  # ResNet-20, batch 128, ~3 min on 2 cores
    .venv/bin/python benchmarks/loop_overhead.py --model small_cnn --steps 40 --breakdown
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import io
import logging
import math
import os
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(
        0, str(REPO)
    )  # `python benchmarks/loop_overhead.py` from anywhere; tests/ is not installed

import hydra  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from omegaconf import DictConfig, OmegaConf, open_dict  # noqa: E402
from pytorch_lightning.callbacks import Callback  # noqa: E402

from tests.helpers import compose_config  # noqa: E402
from training.checkpoints import AtomicCheckpointIO, checkpoint_metadata  # noqa: E402
from training.instantiate import instantiate_collection  # noqa: E402

TARGET = 1.05
LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric")
KINDS = ("plain", "lightning", "visioncore")
LABELS = {
    "plain": "(a) plain PyTorch loop",
    "lightning": "(b) bare Lightning loop",
    "visioncore": "(c) Lightning + VisionCore callbacks + CSV",
}


# --------------------------------------------------------------------------------------- setup
def compose(args: argparse.Namespace, run_dir: Path) -> DictConfig:
    """The real config: cnn_digits' trainer/callbacks/logger, `--model`, procedural CIFAR-shaped data."""
    samples = math.ceil((args.warmup + args.steps + 2) * args.batch_size / (0.8 * 0.9))  # one epoch
    cfg = compose_config(
        [
            "experiment=cnn_digits",
            f"model={args.model}",
            "model.lr_schedule=null",  # (a) has no scheduler either; an epoch-interval one costs nothing
            f"model.optimizer.lr={args.lr}",
            "data=procedural",
            "data.procedural.channels=3",
            "data.procedural.image_size=32",
            "data.procedural.num_classes=10",
            f"data.procedural.num_samples={samples}",
            f"data.batch_size={args.batch_size}",
            "data.augment=false",
            "data.num_workers=0",
            f"hydra.run.dir={run_dir}",
        ]
    )
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)  # `${hydra:runtime.output_dir}` is only set inside a Hydra job
        del cfg["hydra"]
    return cfg


class Setup:
    """The model config, initial weights and datamodule shared by every run."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self.lock = threading.Lock()
        pl.seed_everything(0, workers=True)
        self.datamodule = hydra.utils.instantiate(cfg.data)
        self.datamodule.setup("fit")
        module = hydra.utils.instantiate(cfg.model)
        self.initial_state = copy.deepcopy(module.state_dict())
        self.params = sum(p.numel() for p in module.parameters())

    def module(self) -> pl.LightningModule:
        with self.lock:  # loops build their models from threads; OmegaConf is not thread-safe
            module = hydra.utils.instantiate(self.cfg.model)
            module.load_state_dict(self.initial_state)
        return module

    def config(self, run_dir: Path) -> DictConfig:
        with self.lock:
            cfg = copy.deepcopy(self.cfg)
        cfg.paths.output_dir = str(run_dir)
        return cfg

    def loader(self) -> torch.utils.data.DataLoader:
        return self.datamodule.train_dataloader()  # a fresh ResumableLoader: same seed, same batches


# ------------------------------------------------------------------------------------ lockstep
class LoopFailed(RuntimeError):
    pass


class Lockstep:
    """Lets loops (one per thread) take turns one step at a time and times each loop's own turns only.

    All loops wait in `begin` until every loop has finished its setup; after its last step a loop waits
    until all loops are done, so set-up and tear-down never overlap a timed step.
    """

    def __init__(self, kinds: Sequence[str], total_steps: int) -> None:
        self.kinds = list(kinds)
        self.total = total_steps
        self.cond = threading.Condition()
        self.arrived: set[str] = set()
        self.turn: str | None = None
        self.round = 0
        self.position = 0
        self.durations: dict[str, list[float]] = {kind: [] for kind in kinds}
        self.resumed: dict[str, float] = {}
        self.threads: dict[str, int] = {}  # torch threads each loop saw (set_num_threads is per process)
        self.error: BaseException | None = None

    def _order(self, round_: int) -> list[str]:
        shift = round_ % len(self.kinds)
        return self.kinds[shift:] + self.kinds[:shift]

    def _wait_for(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            if self.error is not None:
                raise LoopFailed("another loop of this lockstep run failed") from self.error
            self.cond.wait(timeout=1.0)

    def begin(self, kind: str) -> None:
        self.threads[kind] = torch.get_num_threads()
        with self.cond:
            self.arrived.add(kind)
            if len(self.arrived) == len(self.kinds):
                self.turn = self._order(0)[0]
                self.cond.notify_all()
            self._wait_for(lambda: self.turn == kind)
        self.resumed[kind] = time.perf_counter()

    def step_end(self, kind: str) -> None:
        self.durations[kind].append(time.perf_counter() - self.resumed[kind])
        with self.cond:
            self.position += 1
            if self.position == len(self.kinds):
                self.position, self.round = 0, self.round + 1
            self.turn = None if self.round >= self.total else self._order(self.round)[self.position]
            self.cond.notify_all()
            if len(self.durations[kind]) >= self.total:
                self._wait_for(lambda: self.turn is None)
                return
            self._wait_for(lambda: self.turn == kind)
        self.resumed[kind] = time.perf_counter()

    def fail(self, error: BaseException) -> None:
        with self.cond:
            self.error = self.error or error
            self.cond.notify_all()


class LockstepHook(Callback):
    """The benchmark's only addition to the Lightning loops: take turns, stop the clock at each batch end."""

    def __init__(self, lockstep: Lockstep, kind: str) -> None:
        self.lockstep, self.kind = lockstep, kind

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.lockstep.begin(self.kind)

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.lockstep.step_end(self.kind)


# --------------------------------------------------------------------------------------- loops
def run_plain(setup: Setup, total_steps: int, lockstep: Lockstep | None = None, kind: str = "plain") -> float:
    module = setup.module()
    net, metric = module.net, module.train_acc
    net.train()
    optimizer = module.configure_optimizers()["optimizer"]  # same parameter groups and weight decay
    smoothing = module.label_smoothing
    loader = setup.loader()
    if lockstep is not None:
        lockstep.begin(kind)
    for steps, (images, labels) in enumerate(loader, start=1):
        optimizer.zero_grad(set_to_none=True)
        logits = net(images)
        loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
        metric.update(logits.detach(), labels)
        loss.backward()
        optimizer.step()
        if lockstep is not None:
            lockstep.step_end(kind)
        if steps == total_steps:
            break
    return float(loss)


def final_loss(trainer: pl.Trainer) -> float:
    metrics = trainer.callback_metrics
    return float(next((metrics[k] for k in ("train/loss_step", "train/loss") if k in metrics), math.nan))


def _trainer_kwargs(total_steps: int) -> dict[str, Any]:
    return {
        "max_steps": total_steps,
        "max_epochs": 1,
        "limit_val_batches": 0,  # no validation: we time training steps only
        "num_sanity_val_steps": 0,
        "use_distributed_sampler": False,
    }


def run_lightning(setup: Setup, total_steps: int, lockstep: Lockstep) -> float:
    module = setup.module()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        precision="32-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[LockstepHook(lockstep, "lightning")],
        **_trainer_kwargs(total_steps),
    )
    trainer.fit(module, train_dataloaders=setup.loader())
    return final_loss(trainer)


def build_visioncore_trainer(
    cfg: DictConfig, total_steps: int, progress_bar: bool, extra: list[Callback]
) -> pl.Trainer:
    """The trainer `training.tasks.run_task` builds: config callbacks, config loggers, atomic checkpoint IO."""
    callbacks = instantiate_collection(cfg.callbacks, "callbacks")
    if not progress_bar:
        callbacks = [cb for cb in callbacks if not isinstance(cb, pl.callbacks.ProgressBar)]
    loggers = instantiate_collection(cfg.logger, "logger")
    resolved = OmegaConf.to_container(cfg, resolve=True)
    trainer_cfg = OmegaConf.merge(cfg.trainer, {"enable_progress_bar": progress_bar})
    trainer = hydra.utils.instantiate(
        trainer_cfg,
        callbacks=[*callbacks, *extra],
        logger=loggers or False,
        default_root_dir=cfg.paths.output_dir,
        plugins=[AtomicCheckpointIO(checkpoint_metadata(resolved))],
        **_trainer_kwargs(total_steps),
    )
    for logger in trainer.loggers:
        logger.log_hyperparams(resolved)
    return trainer


def run_visioncore(
    setup: Setup, total_steps: int, progress_bar: bool, run_dir: Path, extra: list[Callback]
) -> tuple[pl.Trainer, float]:
    cfg = setup.config(run_dir)
    module = setup.module()
    trainer = build_visioncore_trainer(cfg, total_steps, progress_bar, extra)
    trainer.fit(module, train_dataloaders=setup.loader())
    return trainer, final_loss(trainer)


def run_repeat(
    setup: Setup, args: argparse.Namespace, run_dir: Path
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """One lockstep run of the three loops: per-step seconds and final loss of each."""
    total = args.warmup + args.steps
    lockstep = Lockstep(KINDS, total)
    losses: dict[str, float] = {}
    errors: list[BaseException] = []

    def guarded(kind: str, body: Callable[[], float]) -> None:
        try:
            losses[kind] = body()
        except LoopFailed:
            pass
        except BaseException as error:  # re-raised in the main thread below
            errors.append(error)
            lockstep.fail(error)

    # Every loop in a worker thread: none gets the main thread's malloc arena or signal handling alone.
    bodies: dict[str, Callable[[], float]] = {
        "plain": lambda: run_plain(setup, total, lockstep),
        "lightning": lambda: run_lightning(setup, total, lockstep),
        "visioncore": lambda: run_visioncore(
            setup, total, args.progress_bar, run_dir, [LockstepHook(lockstep, "visioncore")]
        )[1],
    }
    threads = [threading.Thread(target=guarded, args=item, name=item[0]) for item in bodies.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    if set(lockstep.threads.values()) != {args.threads}:
        raise RuntimeError(f"torch threads differed between loops: {lockstep.threads}")
    return lockstep.durations, losses


def calibrate(setup: Setup, args: argparse.Namespace) -> list[float]:
    """A/A run: three copies of (a) in lockstep. Their spread is the resolution of the comparison."""
    total = args.warmup + args.steps
    names = ["a1", "a2", "a3"]
    lockstep = Lockstep(names, total)
    threads = [threading.Thread(target=run_plain, args=(setup, total, lockstep, name)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [1000.0 * statistics.fmean(lockstep.durations[name][args.warmup :]) for name in names]


# ----------------------------------------------------------------------------------- breakdown
class HookTimes:
    """Wraps the per-step hooks of callbacks and the logger methods of loggers and sums their time."""

    HOOKS = (
        "on_train_batch_start",
        "on_before_backward",
        "on_after_backward",
        "on_before_optimizer_step",
        "on_before_zero_grad",
        "on_train_batch_end",
    )

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.active = False

    def _wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.active:
                return fn(*args, **kwargs)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start

        return timed

    def instrument(self, trainer: pl.Trainer) -> None:
        for callback in trainer.callbacks:
            if isinstance(callback, (StepClock, ActivateAfterWarmup)):
                continue
            for hook in self.HOOKS:
                if getattr(type(callback), hook, None) is getattr(Callback, hook, None):
                    continue  # not overridden: Lightning's no-op
                name = f"callback {type(callback).__name__}"
                setattr(callback, hook, self._wrap(name, getattr(callback, hook)))
        for logger in trainer.loggers:
            for method in ("log_metrics", "save"):
                name = f"logger {type(logger).__name__}.{method}"
                setattr(logger, method, self._wrap(name, getattr(logger, method)))
        connector = trainer._logger_connector
        for method in ("update_train_step_metrics", "on_batch_end"):
            name = f"lightning logger connector.{method}"
            setattr(connector, method, self._wrap(name, getattr(connector, method)))


class StepClock(Callback):
    """Host time at each batch end (solo runs)."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.ends.append(time.perf_counter())


class ActivateAfterWarmup(Callback):
    """Switches the hook timers on for the measured steps only."""

    def __init__(self, times: HookTimes, warmup: int) -> None:
        self.times, self.warmup, self.seen = times, warmup, 0

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.seen += 1
        self.times.active = self.seen >= self.warmup


def breakdown(setup: Setup, args: argparse.Namespace, run_dir: Path) -> list[tuple[str, float]]:
    """ms per measured step spent in each callback (all its per-step hooks) and logger method."""
    times, clock = HookTimes(), StepClock()
    cfg = setup.config(run_dir)
    module = setup.module()
    total = args.warmup + args.steps
    set_threads(args.threads)
    with quiet():
        trainer = build_visioncore_trainer(
            cfg, total, args.progress_bar, [clock, ActivateAfterWarmup(times, args.warmup)]
        )
        times.instrument(trainer)
        trainer.fit(module, train_dataloaders=setup.loader())
    rows = [(name, 1000.0 * seconds / args.steps) for name, seconds in times.seconds.items()]
    whole = 1000.0 * (clock.ends[total - 1] - clock.ends[args.warmup - 1]) / args.steps
    rows.append(("(c) whole step, this instrumented run on its own", whole))
    return sorted(rows, key=lambda row: -row[1])


# ----------------------------------------------------------------------------------------- main
def set_threads(threads: int) -> None:
    torch.set_num_threads(threads)
    if torch.get_num_threads() != threads:
        raise RuntimeError(f"torch.set_num_threads({threads}) did not take")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence Lightning's banners, warnings and the progress bar (drawn into a buffer when on)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        previous = {name: logging.getLogger(name).level for name in LIGHTNING_LOGGERS}
        for name in previous:
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                yield
        finally:
            for name, level in previous.items():
                logging.getLogger(name).setLevel(level)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet20", help="a conf/model/ name (default: resnet20)")
    parser.add_argument("--steps", type=int, default=15, help="measured steps per run (default: 15)")
    parser.add_argument(
        "--warmup", type=int, default=3, help="steps skipped at the start of each run (default: 3)"
    )
    parser.add_argument("--batch-size", type=int, default=128, help="default: 128")
    parser.add_argument(
        "--repeats", type=int, default=3, help="lockstep runs; the median is reported (default: 3)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for every loop (default: 1; on a shared 2-core machine two OpenMP threads "
        "stall whenever a neighbour takes a core, and steps swing between 0.4 and 3 s)",
    )
    parser.add_argument("--lr", type=float, default=0.01, help="a learning rate that keeps every run finite")
    parser.add_argument(
        "--progress-bar",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="keep the TQDM bar in (c); off by default, as in non-interactive runs "
        "(trainer.enable_progress_bar=${vc.is_tty:})",
    )
    parser.add_argument("--breakdown", action="store_true", help="also time each callback / logger in (c)")
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="first run three copies of (a) in lockstep (A/A) to show the noise floor of the comparison",
    )
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when (c) misses the target")
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.steps < 1 or args.repeats < 1 or args.threads < 1:
        parser.error("--warmup, --steps, --repeats and --threads must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("WANDB_MODE", "offline")
    set_threads(args.threads)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vc-bench-") as tmp:
        tmp_dir = Path(tmp)
        with quiet():
            setup = Setup(compose(args, tmp_dir / "run"))
            run_plain(setup, 2)  # the first steps of a process pay for kernel selection; keep them out
        print(
            f"model={args.model} ({setup.params / 1e6:.2f}M params)  batch={args.batch_size}  "
            f"threads={args.threads}  steps={args.steps} (+{args.warmup} warm-up)  repeats={args.repeats}  "
            f"progress_bar={'on' if args.progress_bar else 'off'}  torch {torch.__version__}  "
            f"lightning {pl.__version__}",
            flush=True,
        )
        if args.calibrate:
            with quiet():
                same = calibrate(setup, args)
            middle = statistics.median(same)
            print(
                "  A/A calibration, three plain loops in lockstep: "
                + " / ".join(f"{value:.1f}" for value in same)
                + f" ms/step, largest deviation {100 * max(abs(v / middle - 1) for v in same):.1f}%",
                flush=True,
            )
        ms: dict[str, list[float]] = {kind: [] for kind in KINDS}
        paired: dict[str, list[float]] = {"lightning": [], "visioncore": []}
        for repeat in range(args.repeats):
            set_threads(args.threads)
            with quiet():
                durations, losses = run_repeat(setup, args, tmp_dir / f"run{repeat}")
            if torch.get_num_threads() != args.threads:
                raise RuntimeError(f"torch threads changed to {torch.get_num_threads()} during the run")
            measured = {kind: durations[kind][args.warmup :] for kind in KINDS}
            for kind in KINDS:
                ms[kind].append(1000.0 * statistics.fmean(measured[kind]))
            for kind in paired:
                paired[kind] += [x / a for x, a in zip(measured[kind], measured["plain"], strict=True)]
            print(
                f"  repeat {repeat + 1}: "
                + "  ".join(f"{kind} {ms[kind][-1]:7.1f} ms/step" for kind in KINDS)
                + "  final loss "
                + "/".join(f"{losses[kind]:.4f}" for kind in KINDS),
                flush=True,
            )

        median = {kind: statistics.median(values) for kind, values in ms.items()}
        print()
        print(
            f"{'loop':<44} {'ms/step (median)':>16} {'min':>8} {'max':>8} {'vs (a) ms':>10} "
            f"{'ratio to (a)':>13} {'paired ratio':>13}"
        )
        for kind in KINDS:
            pair = statistics.median(paired[kind]) if kind in paired else 1.0
            print(
                f"{LABELS[kind]:<44} {median[kind]:16.1f} {min(ms[kind]):8.1f} {max(ms[kind]):8.1f} "
                f"{median[kind] - median['plain']:+10.1f} {median[kind] / median['plain']:13.3f} {pair:13.3f}"
            )
        print()
        verdicts = []
        for kind, letter in (("lightning", "b"), ("visioncore", "c")):
            ratio = median[kind] / median["plain"]
            verdict = "PASS" if ratio <= TARGET else "FAIL"
            verdicts.append(verdict)
            print(f"({letter})/(a) = {ratio:.3f}   target <= {TARGET:.2f}   {verdict}")
        for kind, letter in (("lightning", "b"), ("visioncore", "c")):
            ratios = " ".join(f"{x / a:.3f}" for x, a in zip(ms[kind], ms["plain"], strict=True))
            print(f"per-repeat ({letter})/(a): {ratios}")
        spread = max((max(v) - min(v)) / statistics.median(v) for v in ms.values())
        print(f"largest spread between repeats of one loop: {100 * spread:.1f}% of its median")

        if args.breakdown or verdicts[-1] == "FAIL":
            print(
                "\nwhere (c) spends its time outside the model (one instrumented run, ms per measured step):"
            )
            for name, value in breakdown(setup, args, tmp_dir / "breakdown"):
                print(f"  {name:<58} {value:8.2f}")
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")
    return 1 if args.strict and verdicts[-1] == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
