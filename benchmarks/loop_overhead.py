"""Loop overhead: a plain PyTorch loop vs a bare Lightning loop vs VisionCore's configured Lightning loop.

All three train the same network (same initial weights) on the same batches with the same torch threads.
`--system cnn` (default): `conf/model/<--model>.yaml` on the cnn datamodule's `ResumableLoader` over
procedural 32x32 RGB gratings; `--system ukiyoe`: the ukiyoe GAN (`experiment=ukiyoe_gan_nca`, manual
optimisation) on procedural prints.

  (a) plain       cnn: zero_grad / forward / cross-entropy / train-accuracy update / backward / step;
                  ukiyoe: the module's own loss functions with plain optimizer steps (clipping, one finite
                  check per step as the NonFiniteGuard does, the D schedule, the EMA generator)
  (b) lightning   `pl.Trainer(logger=False)` without checkpointing, progress bar, summary or validation
  (c) visioncore  (b) plus every callback of the experiment's callbacks config and the CSV logger, composed
                  from the real config (`experiment=cnn_digits` / `ukiyoe_gan_nca`) and built the way
                  `training.tasks` does

ms/step runs from the end of the warm-up to the end of the last step, so data loading, hooks, logging
and callbacks all count. The loops run one after another in rotating order (a b c, b c a, c a b, ...) so
a shared machine's drift hits them alike; the table shows medians over `--repeats`. Target: (c)/(a) <=
1.05 (DESIGN.md). `--breakdown` adds per-callback time from one SimpleProfiler run of (c).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import math
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # runnable from anywhere; tests/ is not an installed package

import hydra  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from omegaconf import DictConfig, OmegaConf, open_dict  # noqa: E402
from pytorch_lightning.callbacks import Callback, ProgressBar  # noqa: E402
from pytorch_lightning.profilers import SimpleProfiler  # noqa: E402

from callbacks.nonfinite_guard import grads_finite  # noqa: E402
from tests.helpers import compose_config  # noqa: E402
from training.instantiate import instantiate_collection  # noqa: E402
from training.toolkit.checkpoints import AtomicCheckpointIO, checkpoint_metadata  # noqa: E402

TARGET = 1.05
LOOPS = {
    "plain": "(a) plain PyTorch",
    "lightning": "(b) bare Lightning",
    "visioncore": "(c) Lightning + VisionCore callbacks + CSV",
}
STEP, FETCH = "run_training_batch", "[_TrainingEpochLoop].train_dataloader_next"  # SimpleProfiler actions


def compose(args: argparse.Namespace, run_dir: Path) -> DictConfig:
    """The real config: cnn_digits' trainer, callbacks and logger, `--model`, CIFAR-shaped gratings; or the
    ukiyoe GAN experiment on just enough procedural prints (no validation, test or FID)."""
    if args.system == "ukiyoe":
        cfg = compose_config(
            [
                "experiment=ukiyoe_gan_nca",
                "model.quality=null",
                "monitor=null",  # nothing ranks snapshots without FID
                f"data.batch_size={args.batch_size}",
                f"data.num_train={(args.warmup + args.steps + 1) * args.batch_size}",
                "data.num_val=0",
                "data.num_test=2",
                "data.num_workers=0",
            ]
        )
        return _detached(cfg, run_dir)
    samples = math.ceil((args.warmup + args.steps + 1) * args.batch_size / (0.8 * 0.9))  # after hold-outs
    cfg = compose_config(
        [
            "experiment=cnn_digits",
            f"model={args.model}",
            "model.lr_schedule=null",  # (a) has none either
            "data=procedural",
            "data.procedural.channels=3",
            "data.procedural.image_size=32",
            "data.procedural.num_classes=10",
            f"data.procedural.num_samples={samples}",
            f"data.batch_size={args.batch_size}",
            "data.augment=false",
            "data.num_workers=0",
        ]
    )
    return _detached(cfg, run_dir)


def _detached(cfg: DictConfig, run_dir: Path) -> DictConfig:
    """`cfg` runnable outside a Hydra job, writing into `run_dir`."""
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)  # `${hydra:runtime.output_dir}` exists only inside a Hydra job
        del cfg["hydra"]
    return cfg


class StepClock(Callback):
    """Host time at every batch end: the clock of both Lightning loops."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_train_batch_end(self, *args: Any) -> None:
        self.ends.append(time.perf_counter())


def steady_ms(ends: list[float], warmup: int) -> float:
    """Mean ms/step after the first `warmup` steps, from step-end times."""
    return 1000.0 * (ends[-1] - ends[warmup - 1]) / (len(ends) - warmup)


def rotations(kinds: list[str], repeats: int) -> list[list[str]]:
    """The loop order of each repeat: a b c, b c a, c a b, a b c, ..."""
    return [kinds[r % len(kinds) :] + kinds[: r % len(kinds)] for r in range(repeats)]


class Loops:
    """The three loops, each built fresh from the same config, initial weights and batches."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.cfg = compose(args, tmp / "run")
        self.total, self.tmp = args.warmup + args.steps, tmp
        pl.seed_everything(0)
        self.datamodule = hydra.utils.instantiate(self.cfg.data)
        self.datamodule.prepare_data()  # generated data sets are written here once
        self.datamodule.setup("fit")
        self.initial = hydra.utils.instantiate(self.cfg.model).state_dict()
        # Training steps only: no validation (both Lightning loops), one epoch of `total` steps.
        self.fit_args = dict(max_steps=self.total, max_epochs=1, limit_val_batches=0, num_sanity_val_steps=0)

    def model(self) -> pl.LightningModule:
        model = hydra.utils.instantiate(self.cfg.model)
        model.load_state_dict(self.initial)
        return model

    def loader(self) -> torch.utils.data.DataLoader:
        return self.datamodule.train_dataloader()  # a fresh ResumableLoader: same seed, same batches

    def plain(self, steps: int | None = None) -> list[float]:
        if self.cfg.model._target_.endswith("UkiyoeGANModel"):
            return self.plain_gan(steps)
        model = self.model()
        net, metric, smoothing = model.net, model.train_acc, model.label_smoothing
        optimizer = model.configure_optimizers()["optimizer"]  # the same parameter groups and decay
        net.train()
        ends = []
        for images, labels in self.loader():
            optimizer.zero_grad(set_to_none=True)
            logits = net(images)
            loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
            metric.update(logits.detach(), labels)
            loss.backward()
            optimizer.step()
            ends.append(time.perf_counter())
            if len(ends) == (steps or self.total):
                return ends
        raise RuntimeError(f"the loader ran out after {len(ends)} steps")

    def plain_gan(self, steps: int | None = None) -> list[float]:
        """The ukiyoe GAN's training step without Lightning: the same losses, schedule and EMA."""
        model = self.model()
        g_optimizer, d_optimizer = model.configure_optimizers()
        clip = model.hparams.clip_grad_norm
        model.train()
        ends = []
        for batch_idx, (real, _) in enumerate(self.loader()):
            fake, _ = model.generator(torch.randn(real.shape[0], model.generator.z_dim))
            if batch_idx % model.d_train_interval == 0:
                for _ in range(model.d_steps):
                    terms = model.discriminator_losses(real, fake.detach(), with_r1=model._r1_due())
                    _plain_step(d_optimizer, terms["loss"], clip)
                    model.d_updates += 1
            model.discriminator.requires_grad_(False)
            _plain_step(g_optimizer, model.generator_losses(fake)["loss"], clip)
            model.discriminator.requires_grad_(True)
            model.generator_ema.update_parameters(model.generator)
            ends.append(time.perf_counter())
            if len(ends) == (steps or self.total):
                return ends
        raise RuntimeError(f"the loader ran out after {len(ends)} steps")

    def _fit(self, trainer: pl.Trainer, clock: StepClock) -> list[float]:
        with contextlib.redirect_stdout(io.StringIO()):  # RichModelSummary's table, before the first step
            trainer.fit(self.model(), train_dataloaders=self.loader())
        return clock.ends

    def lightning(self) -> list[float]:
        clock = StepClock()
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=1,
            precision="32-true",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            use_distributed_sampler=False,
            callbacks=[clock],
            **self.fit_args,
        )
        return self._fit(trainer, clock)

    def visioncore(self, profiler: SimpleProfiler | None = None) -> list[float]:
        """As `training.tasks.run_task` builds it, in a fresh run directory; the progress bar stays off."""
        cfg = OmegaConf.merge(self.cfg, {"paths": {"output_dir": tempfile.mkdtemp(dir=self.tmp)}})
        resolved = OmegaConf.to_container(cfg, resolve=True)
        callbacks = [
            cb for cb in instantiate_collection(cfg.callbacks, "callbacks") if not isinstance(cb, ProgressBar)
        ]
        clock = StepClock()
        trainer = hydra.utils.instantiate(
            cfg.trainer,
            callbacks=[*callbacks, clock],
            logger=instantiate_collection(cfg.logger, "logger") or False,
            default_root_dir=cfg.paths.output_dir,
            plugins=[AtomicCheckpointIO(checkpoint_metadata(resolved))],
            enable_progress_bar=False,
            profiler=profiler,
            **self.fit_args,
        )
        for logger in trainer.loggers:
            logger.log_hyperparams(resolved)
        return self._fit(trainer, clock)


def _plain_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, clip: float | None) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if clip:
        torch.nn.utils.clip_grad_norm_(params, clip)
    if bool(grads_finite([p.grad for p in params])):  # the guard's one host read per step
        optimizer.step()


def breakdown(loops: Loops) -> list[tuple[str, float]]:
    """ms/step in each callback's per-step hooks (those called on every step) from one profiled run of (c)."""
    profiler = SimpleProfiler()
    loops.visioncore(profiler)
    seconds: dict[str, float] = defaultdict(float)
    for action, durations in profiler.recorded_durations.items():
        name = action.removeprefix("[Callback]").split(".")[0].split("{")[0]  # ModelCheckpoint{...}.hook
        if action.startswith("[Callback]") and len(durations) >= loops.total and name != "StepClock":
            seconds[name] += math.fsum(durations)
    seconds["all callbacks"] = math.fsum(seconds.values())
    seconds["fetching the batch"] = math.fsum(profiler.recorded_durations[FETCH])
    seconds["forward, backward and optimizer step"] = math.fsum(profiler.recorded_durations[STEP])
    return sorted(((name, 1000.0 * s / loops.total) for name, s in seconds.items()), key=lambda r: r[1])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", choices=("cnn", "ukiyoe"), default="cnn", help="default: cnn")
    parser.add_argument("--model", default="resnet20", help="cnn: a conf/model/ name (default: resnet20)")
    parser.add_argument("--steps", type=int, default=8, help="measured steps per run (default: 8)")
    parser.add_argument("--warmup", type=int, default=2, help="steps skipped at the start (default: 2)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 128 (cnn), 16 (ukiyoe)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each loop; median shown (default: 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1; see README)")
    parser.add_argument("--breakdown", action="store_true", help="also profile the callbacks of (c)")
    args = parser.parse_args(argv)
    args.batch_size = args.batch_size or (16 if args.system == "ukiyoe" else 128)
    if min(args.warmup, args.steps, args.repeats, args.threads) < 1:
        parser.error("--warmup, --steps, --repeats and --threads must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore")  # Lightning's advice about workers and logging intervals
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vc-bench-") as tmp:
        loops = Loops(args, Path(tmp))
        loops.plain(steps=2)  # a process's first steps pay for kernel selection: keep them out of every loop
        print(
            f"{'model=' + args.model if args.system == 'cnn' else 'ukiyoe_gan_nca'}  batch={args.batch_size}  threads={args.threads}  steps={args.steps} "
            f"(+{args.warmup} warm-up)  repeats={args.repeats}  torch {torch.__version__}  "
            f"lightning {pl.__version__}",
            flush=True,
        )
        ms: dict[str, list[float]] = {kind: [] for kind in LOOPS}
        for repeat, order in enumerate(rotations(list(LOOPS), args.repeats), start=1):
            for kind in order:
                ms[kind].append(steady_ms(getattr(loops, kind)(), args.warmup))
                assert torch.get_num_threads() == args.threads, f"{kind} changed torch's thread count"
            print(f"  repeat {repeat}: " + "  ".join(f"{k} {ms[k][-1]:.1f}" for k in LOOPS) + " ms/step")

        median = {kind: statistics.median(values) for kind, values in ms.items()}
        print(f"\n{'loop':<44} {'ms/step':>8} {'min':>8} {'max':>8} {'ratio to (a)':>13}  target <= {TARGET}")
        for kind, label in LOOPS.items():
            ratio = median[kind] / median["plain"]
            verdict = "" if kind == "plain" else ("PASS" if ratio <= TARGET else "FAIL")
            row = f"{label:<44} {median[kind]:8.1f} {min(ms[kind]):8.1f} {max(ms[kind]):8.1f} {ratio:13.3f}"
            print(f"{row}  {verdict}".rstrip())
        if args.breakdown:
            print("\n(c) per-step time by part, one SimpleProfiler run (ms/step, warm-up included):")
            for name, value in breakdown(loops):
                print(f"  {name:<58} {value:8.2f}")
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
