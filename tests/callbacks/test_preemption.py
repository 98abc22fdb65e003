"""Preemption under several processes: the ranks agree on stopping every `sync_every_n_batches` batches."""

from __future__ import annotations

import signal
from types import SimpleNamespace

import pytest

from callbacks.latest_checkpoint import LatestCheckpoint
from callbacks.preemption import Preemption


class _Latest(LatestCheckpoint):
    def __init__(self) -> None:
        self.saved_at: list[int] = []

    def save(self, trainer) -> str:  # type: ignore[override]
        self.saved_at.append(trainer.global_step)
        return "latest.ckpt"


def _trainer(world_size: int, reductions: list[bool]) -> SimpleNamespace:
    def reduce_boolean_decision(decision: bool, all: bool = True) -> bool:  # noqa: A002 - Lightning's name
        reductions.append(decision)
        return decision

    strategy = SimpleNamespace(reduce_boolean_decision=reduce_boolean_decision)
    return SimpleNamespace(
        world_size=world_size,
        strategy=strategy,
        received_sigterm=False,
        callbacks=[_Latest()],
        global_step=0,
        should_stop=False,
        is_global_zero=True,
    )


@pytest.mark.parametrize("world_size", [1, 2])
def test_a_signal_stops_at_the_next_agreement_point(world_size: int) -> None:
    reductions: list[bool] = []
    trainer = _trainer(world_size, reductions)
    preemption = Preemption(requeue_on_slurm=False, sync_every_n_batches=10)
    for batch in range(1, 26):
        trainer.global_step = batch
        if batch == 13:
            preemption._handler(signal.SIGUSR1, None)
        preemption.on_train_batch_end(trainer, None)
        if trainer.should_stop:
            break
    if world_size == 1:  # one process: no collective, it stops at the batch the signal came in
        assert reductions == [] and trainer.callbacks[0].saved_at == [13]
    else:  # the ranks meet every 10 batches: one all-reduce each time, the stop at batch 20
        assert reductions == [False, True] and trainer.callbacks[0].saved_at == [20]
    assert preemption.stop_reason == "preempted by SIGUSR1"


def test_sync_every_n_batches_must_be_positive() -> None:
    with pytest.raises(ValueError, match="callbacks.preemption.sync_every_n_batches"):
        Preemption(sync_every_n_batches=0)
