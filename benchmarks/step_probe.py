"""`StepProbe`: Lightning's profiler hook points used as a clock around real training steps (efficiency.py).

Lightning calls a `Profiler` around every fetch, batch transfer and `run_training_batch`. The probe reads
the clock there, wraps one step in `FlopCounterMode` and a few in `torch.profiler`, and stops the fit when
done. On a CUDA device it synchronises before and after each step (so a step's time is the device's), times
the reference matmul on the device in the trainer's precision, profiles CUDA kernels too, and with
`sync_check` runs the timed steps under `torch.cuda.set_sync_debug_mode("error")`: any host-device sync
inside a step (`.item()`, `.cpu()`, a data-dependent shape) fails the fit at the line that made it.
"""

from __future__ import annotations

import math
import time

import pytorch_lightning as pl
import torch
from pytorch_lightning.profilers import Profiler
from torch.utils.flop_counter import FlopCounterMode

STEP = "run_training_batch"
FETCH = "train_dataloader_next"


def matmul_peak(
    size: int = 2048, repeats: int = 3, device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> float:
    """FLOP/s of a `size`^3 `torch.mm` in `dtype` on `device` (CPU: at the current thread count), the best
    of `repeats` after a warm-up (allocation, kernel choice)."""
    device = device or torch.device("cpu")
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    torch.mm(a, b)
    seconds = []
    for _ in range(repeats):
        _synchronize(device)
        started = time.perf_counter()
        torch.mm(a, b)
        _synchronize(device)
        seconds.append(time.perf_counter() - started)
    return 2.0 * size**3 / min(seconds)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_dtype(trainer: pl.Trainer) -> torch.dtype:
    """The matmul dtype of the trainer's precision: bf16 for `bf16-mixed`/`bf16-true`, else fp32."""
    return torch.bfloat16 if str(trainer.precision).startswith("bf16") else torch.float32


class StepProbe(Profiler):
    """Time of every fetch + transfer and every step; FlopCounterMode around one step and torch.profiler
    around a few; stops the fit when done. `sync_check` (CUDA only): the timed steps may not sync."""

    def __init__(
        self, warmup: int, timed: int, profiled: int, matmul_size: int = 2048, sync_check: bool = False
    ) -> None:
        super().__init__()
        self.warmup, self.timed, self.profiled = warmup, timed, profiled
        self.matmul_size = matmul_size
        self.sync_check = sync_check
        self.peak: float | None = None  # FLOP/s of the reference matmul, measured just before the timed steps
        self.peak_dtype = torch.float32
        self.trainer: pl.Trainer | None = None
        self.steps = 0  # training steps started
        self.step_ms: list[float] = []  # the timed steps
        self.data_ms: list[float] = []  # getting each timed step's batch
        self.profiled_s = 0.0  # wall time of the profiled steps
        self.flops: int | None = None
        self.torch_profile: torch.profiler.profile | None = None
        self._pending_data = 0.0  # fetch + transfer seconds since the last step
        self._started: dict[str, float] = {}
        self._flop_counter: FlopCounterMode | None = None

    @property
    def total(self) -> int:
        return self.warmup + self.timed + 1 + self.profiled

    @property
    def device(self) -> torch.device:
        return self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")

    @property
    def on_cuda(self) -> bool:
        return self.device.type == "cuda"

    def _phase(self, index: int) -> str:
        if index < self.warmup:
            return "warmup"
        if index < self.warmup + self.timed:
            return "timed"
        if index == self.warmup + self.timed:
            return "flops"
        return "profile"

    @staticmethod
    def _is_data(action: str) -> bool:
        """The fetch and the transfer hooks Lightning runs between two steps (nested hooks not again)."""
        return (
            action.endswith(FETCH)
            or action.endswith(".on_before_batch_transfer")
            or (action.startswith("[Strategy]") and action.endswith(".batch_to_device"))
        )

    def start(self, action_name: str) -> None:
        if action_name == STEP:
            phase = self._phase(self.steps)
            if phase == "timed" and self.peak is None:  # the machine's speed of the moment, not the step's
                self.peak_dtype = step_dtype(self.trainer) if self.trainer is not None else torch.float32
                self.peak = matmul_peak(self.matmul_size, device=self.device, dtype=self.peak_dtype)
            if phase == "flops":
                self._flop_counter = FlopCounterMode(display=False)
                self._flop_counter.__enter__()
            elif phase == "profile" and self.torch_profile is None:
                activities = [torch.profiler.ProfilerActivity.CPU]
                if self.on_cuda:
                    activities.append(torch.profiler.ProfilerActivity.CUDA)
                self.torch_profile = torch.profiler.profile(activities=activities, record_shapes=True)
                self.torch_profile.__enter__()
            _synchronize(self.device)  # the step's time starts with an idle device
            self._started[action_name] = time.perf_counter()
            if self.sync_check and phase == "timed" and self.on_cuda:
                torch.cuda.set_sync_debug_mode("error")
        elif self._is_data(action_name):
            self._started[action_name] = time.perf_counter()

    def stop(self, action_name: str) -> None:
        if action_name == STEP and self.on_cuda:
            torch.cuda.set_sync_debug_mode("default")  # before the synchronize below, which it would refuse
            _synchronize(self.device)
        started = self._started.pop(action_name, None)
        if started is None:
            return
        elapsed = time.perf_counter() - started
        if action_name != STEP:
            self._pending_data += elapsed
            return
        phase = self._phase(self.steps)
        if phase == "timed":
            self.step_ms.append(1000.0 * elapsed)
            self.data_ms.append(1000.0 * self._pending_data)
        elif phase == "flops" and self._flop_counter is not None:
            self._flop_counter.__exit__(None, None, None)
            self.flops = self._flop_counter.get_total_flops()
            self._flop_counter = None
        elif phase == "profile":
            self.profiled_s += elapsed
        self._pending_data = 0.0
        self.steps += 1
        if self.steps == self.total:
            if self.torch_profile is not None:
                self.torch_profile.__exit__(None, None, None)
            if self.trainer is not None:
                self.trainer.should_stop = True  # min_epochs=0: the fit ends after this batch

    def close(self) -> None:
        """Leave the sync check, FlopCounterMode and torch.profiler if a step failed inside them."""
        if self.on_cuda:
            torch.cuda.set_sync_debug_mode("default")
        if self._flop_counter is not None:
            self._flop_counter.__exit__(None, None, None)
            self._flop_counter = None
        if self.torch_profile is not None and self.steps < self.total:
            self.torch_profile.__exit__(None, None, None)
            self.torch_profile = None

    def summary(self) -> str:
        return ""  # Lightning prints a profiler's summary at the end of fit: nothing to print


def _short(name: str) -> str:
    return name.removeprefix("aten::")


def top_operators(
    prof: torch.profiler.profile, wall_s: float, count: int = 3, device: bool = False
) -> tuple[list[tuple[str, float]], str, float]:
    """The `count` operators with the most self time (CPU, or the device's with `device`), as shares of
    `wall_s`, the top one's input shapes (its group with the most self time), and the share of `wall_s`
    spent in any operator. Autograd-engine wrappers and annotations (`Optimizer.step#...`: Python under
    them) are not operators."""

    def is_operator(name: str) -> bool:
        return "::" in name and not name.startswith(("autograd::", "profiler::"))

    def self_time(event: object) -> float:
        return getattr(event, "self_device_time_total" if device else "self_cpu_time_total")

    events = [e for e in prof.key_averages() if is_operator(e.key)]
    events.sort(key=self_time, reverse=True)
    wall_us = max(wall_s, 1e-9) * 1e6
    top = [(_short(e.key), self_time(e) / wall_us) for e in events[:count]]
    in_ops = math.fsum(self_time(e) for e in events) / wall_us
    detail = ""
    if events:
        groups = [e for e in prof.key_averages(group_by_input_shape=True) if e.key == events[0].key]
        if groups:
            group = max(groups, key=self_time)
            shapes = [shape for shape in group.input_shapes if shape]
            detail = (
                f"{_short(group.key)} {shapes} ({group.count} calls, "
                f"{self_time(group) / wall_us:.0%} of the profiled steps)"
            )
    return top, detail, in_ops
