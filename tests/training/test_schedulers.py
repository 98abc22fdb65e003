"""Warmup-cosine LR schedule and scalar schedules: golden values, boundaries, validation, resume."""

from __future__ import annotations

import math

import pytest
import torch

from training.toolkit.schedulers import LinearWarmupCosineAnnealingLR, scalar_schedule, warmup_cosine_factor

W, T, MIN = 4, 12, 0.1


def test_warmup_cosine_golden_values() -> None:
    f = lambda step: warmup_cosine_factor(step, W, T, MIN)  # noqa: E731
    assert f(0) == 1 / 5  # > 0: the first step trains
    assert f(W - 1) == 4 / 5
    assert f(W) == 1.0
    assert f((W + T) // 2) == pytest.approx(MIN + (1 - MIN) / 2, abs=1e-15)  # cosine midpoint
    assert f(T) == MIN
    assert f(T + 10) == MIN
    values = [f(s) for s in range(T + 3)]
    assert all(b > a for a, b in zip(values[:W], values[1 : W + 1], strict=True))  # warmup increases
    assert all(b < a for a, b in zip(values[W:T], values[W + 1 : T + 1], strict=True))  # cosine decreases


def test_warmup_cosine_without_warmup() -> None:
    assert warmup_cosine_factor(0, 0, 10) == 1.0
    assert warmup_cosine_factor(5, 0, 10) == pytest.approx(0.5, abs=1e-15)
    assert warmup_cosine_factor(10, 0, 10) == 0.0


def test_scheduler_lr_sequence_matches_closed_form() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    scheduler = LinearWarmupCosineAnnealingLR(optimizer, W, T, MIN)
    for step in range(T + 5):
        assert scheduler.get_last_lr()[0] == 0.5 * warmup_cosine_factor(step, W, T, MIN)
        assert optimizer.param_groups[0]["lr"] == 0.5 * warmup_cosine_factor(step, W, T, MIN)
        optimizer.step()
        scheduler.step()


@pytest.mark.parametrize(
    ("warmup", "total", "ratio", "message"),
    [
        (-1, 10, 0.0, "warmup_steps must be an integer >= 0"),
        (0, 0, 0.0, "total_steps must be a positive integer"),
        (0, None, 0.0, "Leave it null in the scheduler config"),
        (0, 10, 1.5, r"min_lr_ratio must be in \[0, 1\]"),
    ],
)
def test_warmup_cosine_rejects_bad_arguments(warmup: int, total: int, ratio: float, message: str) -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match=message):
        LinearWarmupCosineAnnealingLR(optimizer, warmup, total, ratio)


def test_warmup_longer_than_the_run_is_shortened_with_a_warning() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.warns(UserWarning, match=r"warmup_steps \(20\) > total_steps \(10\)"):
        scheduler = LinearWarmupCosineAnnealingLR(optimizer, 20, 10)
    assert scheduler.get_last_lr()[0] == pytest.approx(0.1 * 1 / 11)


def _train(
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    steps: int,
    param: torch.nn.Parameter,
) -> list[float]:
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.zero_grad()
        (param**2).sum().backward()
        optimizer.step()
        scheduler.step()
    return lrs


def test_resume_equals_uninterrupted() -> None:
    def build() -> tuple[torch.nn.Parameter, torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
        param = torch.nn.Parameter(torch.ones(3))
        optimizer = torch.optim.SGD([param], lr=0.3, momentum=0.9)
        return param, optimizer, LinearWarmupCosineAnnealingLR(optimizer, W, T, MIN)

    param, optimizer, scheduler = build()
    uninterrupted = _train(optimizer, scheduler, T + 3, param)
    final_param = param.detach().clone()

    k = 7
    param, optimizer, scheduler = build()
    first = _train(optimizer, scheduler, k, param)
    state = {"param": param.detach().clone(), "opt": optimizer.state_dict(), "sched": scheduler.state_dict()}

    param, optimizer, scheduler = build()  # a fresh process
    with torch.no_grad():
        param.copy_(state["param"])
    optimizer.load_state_dict(state["opt"])
    scheduler.load_state_dict(state["sched"])
    second = _train(optimizer, scheduler, T + 3 - k, param)

    assert first + second == uninterrupted
    assert torch.equal(param.detach(), final_param)


@pytest.mark.parametrize("kind", ["linear", "cosine", "exponential"])
@pytest.mark.parametrize(("start", "end"), [(1.0, 0.1), (0.5, 2.0)])
def test_scalar_schedule_monotone_and_clamped(kind: str, start: float, end: float) -> None:
    values = [scalar_schedule(kind, start, end, step, 10) for step in range(15)]
    assert values[0] == start
    assert values[10:] == [end] * 5
    sign = 1 if end > start else -1
    assert all(sign * (b - a) > 0 for a, b in zip(values[:10], values[1:11], strict=True))


def test_scalar_schedule_midpoints() -> None:
    assert scalar_schedule("linear", 1.0, 0.0, 5, 10) == 0.5
    assert scalar_schedule("cosine", 1.0, 0.0, 5, 10) == pytest.approx(0.5, abs=1e-15)
    assert scalar_schedule("exponential", 1.0, 0.01, 5, 10) == pytest.approx(0.1)
    assert scalar_schedule("constant", 0.7, 0.1, 5, 10) == 0.7
    assert scalar_schedule("linear", 1.0, 0.0, 3, 0) == 0.0  # total_steps=0: already at the end


def test_scalar_schedule_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        scalar_schedule("step", 1.0, 0.0, 0, 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-zero with the same sign"):
        scalar_schedule("exponential", 1.0, 0.0, 0, 10)
    assert math.isfinite(scalar_schedule("exponential", -1.0, -0.1, 3, 10))


def _seed_loop(start: float, end: float, decay: float, epochs: int) -> list[float]:
    """The Gumbel-temperature recipe: use the value for an epoch, then `max(end, value * decay)`."""
    values, value = [], start
    for _ in range(epochs):
        values.append(value)
        value = max(end, value * decay) if decay < 1 else min(end, value * decay)
    return values


@pytest.mark.parametrize(("start", "end", "decay"), [(2.0, 0.5, 0.95), (3.0, 0.3, 0.9), (0.5, 2.0, 1.05)])
def test_geometric_equals_the_recipe_loop_monotone_and_clamped(
    start: float, end: float, decay: float
) -> None:
    values = [scalar_schedule("geometric", start, end, epoch, decay=decay) for epoch in range(40)]
    assert values == _seed_loop(start, end, decay, 40)  # bit for bit, not start * decay**epoch
    assert values[0] == start and values[-1] == end
    sign = 1 if end > start else -1
    moving = values[: values.index(end) + 1]
    assert all(sign * (b - a) > 0 for a, b in zip(moving, moving[1:], strict=False))
    assert all(sign * (end - v) >= 0 for v in values)  # never past end


def test_geometric_golden_values_and_counter_order() -> None:
    assert scalar_schedule("geometric", 2.0, 0.5, 1, decay=0.95) == 1.9
    assert scalar_schedule("geometric", 2.0, 0.5, 27, decay=0.95) == pytest.approx(0.50069, abs=1e-5)
    assert scalar_schedule("geometric", 2.0, 0.5, 28, decay=0.95) == 0.5  # 2 * 0.95**28 = 0.476: clamped
    assert scalar_schedule("geometric", 2.0, 0.5, 10**6, decay=0.95) == 0.5
    # a pure function of the counter: values asked out of order (a resumed run) match the sequence
    forward = [scalar_schedule("geometric", 1.0, 0.01, s, decay=0.99) for s in range(500)]
    assert [scalar_schedule("geometric", 1.0, 0.01, s, decay=0.99) for s in (400, 3, 499)] == [
        forward[400],
        forward[3],
        forward[499],
    ]
    assert scalar_schedule("geometric", 0.7, 0.7, 5, decay=1.0) == 0.7  # already at the end
    assert scalar_schedule("geometric", -2.0, -0.5, 50, decay=0.9) == -0.5


@pytest.mark.parametrize(
    ("kind", "start", "end", "total", "decay", "message"),
    [
        ("geometric", 2.0, 0.5, None, None, r"needs decay > 0, got None"),
        ("geometric", 2.0, 0.5, None, -0.5, r"needs decay > 0"),
        (
            "geometric",
            2.0,
            0.5,
            None,
            1.05,
            r"decay=1.05 does not move start=2.0 towards end=0.5; .* in \(0, 1\)",
        ),
        ("geometric", 2.0, 0.5, None, 1.0, r"decay=1.0 does not move"),
        ("geometric", 0.5, 2.0, None, 0.95, r"decay=0.95 does not move .* a decay > 1"),
        ("geometric", 2.0, 0.5, 10, 0.95, "total_steps is not used by kind 'geometric'"),
        ("geometric", 2.0, 0.0, None, 0.95, "non-zero with the same sign"),
        ("linear", 2.0, 0.5, 10, 0.95, "decay is only used by kind 'geometric'"),
        ("linear", 2.0, 0.5, None, None, "kind 'linear' needs total_steps"),
    ],
)
def test_scalar_schedule_rejects_bad_decay_and_total(
    kind: str, start: float, end: float, total: int | None, decay: float | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        scalar_schedule(kind, start, end, 0, total, decay=decay)  # type: ignore[arg-type]


def test_constant_needs_no_total_steps() -> None:
    assert scalar_schedule("constant", 0.3, 0.1, 7) == 0.3
