"""Samplers: determinism per (seed, epoch), rank shares, contrast weighting, resume, eval sharding."""

import numpy as np
import pytest

from datamodules import loading
from datamodules.v1.samplers import (
    ContrastWeightedSampler,
    EvalBatchSampler,
    ShuffledDraws,
    StratifiedBatchSampler,
)
from tests.helpers import compose_config
from training.toolkit.errors import UserError


def _as_rank(monkeypatch, rank: int, world: int) -> None:
    monkeypatch.setattr(loading, "_rank_and_world", lambda: (rank, world))


def _epoch(sampler, epoch: int) -> list:
    sampler.set_epoch(epoch)
    return list(sampler)


def test_contrast_sampler_is_deterministic_per_seed_and_epoch_and_differs_per_rank(monkeypatch):
    contrast = np.linspace(0.1, 1.0, 50)
    make = lambda seed=3: ContrastWeightedSampler(contrast, seed=seed, num_samples=40)  # noqa: E731
    assert _epoch(make(), 0) == _epoch(make(), 0)
    assert _epoch(make(), 0) != _epoch(make(), 1)
    assert _epoch(make(seed=3), 0) != _epoch(make(seed=4), 0)
    shares = []
    for rank in (0, 1):
        _as_rank(monkeypatch, rank, 2)
        sampler = make()
        assert len(sampler) == 20
        shares.append(_epoch(sampler, 0))
        assert shares[-1] == _epoch(make(), 0)  # the same rank draws the same share again
    assert shares[0] != shares[1] and all(len(share) == 20 for share in shares)


def test_contrast_weighting_prefers_high_contrast_and_the_threshold_excludes_low():
    contrast = np.array([0.05, 0.1, 0.2, 0.4, np.nan])  # NaN: a frame without contrast, never drawn
    sampler = ContrastWeightedSampler(contrast, power=2.0, num_samples=20_000, seed=0)
    counts = np.bincount(_epoch(sampler, 0), minlength=5) / 20_000
    expected = np.array([0.0025, 0.01, 0.04, 0.16, 0.0]) / 0.2125  # contrast**2, normalised
    np.testing.assert_allclose(counts, expected, atol=0.01)
    np.testing.assert_allclose(sampler.probabilities(), expected)
    sampler.contrast_threshold = 0.15
    assert set(_epoch(sampler, 1)) == {2, 3}
    np.testing.assert_allclose(sampler.probabilities(), [0, 0, 0.2, 0.8, 0])
    sampler.contrast_threshold = 0.5
    with pytest.raises(UserError, match=r"no window has contrast >= 0.5 \(the highest is 0.4\)"):
        sampler.probabilities()


def test_contrast_sampler_skip_resumes_the_same_epoch():
    full = _epoch(ContrastWeightedSampler(np.linspace(0.1, 1, 30), seed=1), 4)
    resumed = ContrastWeightedSampler(np.linspace(0.1, 1, 30), seed=1)
    resumed.skip = 12
    assert _epoch(resumed, 4) == full[12:]
    assert _epoch(resumed, 4) == full  # the skip applies once


def test_shuffled_draws_give_ranks_disjoint_slices_of_one_pass():
    draws = ShuffledDraws(12, seed=5)
    shares = [draws.rank_draws(4, epoch=0, rank=rank, world=3) for rank in range(3)]
    assert sorted(np.concatenate(shares).tolist()) == list(range(12))  # one full pass, no repeats
    assert not np.array_equal(draws.rank_draws(12, 0, 0, 1), draws.rank_draws(12, 1, 0, 1))
    longer = draws.rank_draws(30, epoch=0, rank=0, world=1)  # 2.5 passes: each pass is a permutation
    assert sorted(longer[:12].tolist()) == sorted(longer[12:24].tolist()) == list(range(12))


def _stratified(sizes=(30, 7, 12), batch_size=4, **options):
    samplers = [ShuffledDraws(size, seed=2, stream=i) for i, size in enumerate(sizes)]
    return StratifiedBatchSampler(samplers, sizes, batch_size, seed=2, **options)


def test_every_step_holds_every_session_with_batch_size_windows(monkeypatch):
    sampler = _stratified()
    assert len(sampler) == 8  # ceil(30 / 4): the largest session is drawn once
    steps = _epoch(sampler, 0)
    assert len(steps) == 8
    for step in steps:
        assert [draw.session for draw in step] == [0, 1, 2]
        assert [len(draw.positions) for draw in step] == [4, 4, 4]
    largest = np.concatenate([step[0].positions for step in steps])
    assert set(largest.tolist()) == set(range(30))  # 32 draws: one pass over 30 + 2 of the next
    _as_rank(monkeypatch, 1, 2)
    assert len(_stratified()) == 4  # ceil(30 / (4 * 2)) per rank
    assert len(_stratified(steps_per_epoch=5)) == 5


def test_stratified_ranks_draw_disjoint_shares(monkeypatch):
    shares = []
    for rank in (0, 1):
        _as_rank(monkeypatch, rank, 2)
        shares.append(np.concatenate([step[0].positions for step in _epoch(_stratified(), 3)]))
    assert len(shares[0]) == len(shares[1]) == 16
    # 32 draws of one stream: rank 0 takes the first 16, rank 1 the next 16; the first 30 are one pass
    assert sorted(np.concatenate(shares)[:30].tolist()) == list(range(30))


def test_sessions_per_step_is_the_same_draw_on_every_rank(monkeypatch):
    sessions = []
    for rank in (0, 1):
        _as_rank(monkeypatch, rank, 2)
        sampler = _stratified(sessions_per_step=2)
        assert len(sampler) == 6  # ceil(30 * 3/2 / (4 * 2))
        steps = _epoch(sampler, 0)
        sessions.append([[draw.session for draw in step] for step in steps])
        assert all(len(step) == 2 and step == sorted(step) for step in sessions[-1])
    assert sessions[0] == sessions[1]
    assert len({tuple(step) for step in sessions[0]}) > 1  # not the same pair every step
    next_epoch = [[draw.session for draw in step] for step in _epoch(_stratified(sessions_per_step=2), 1)]
    assert next_epoch != sessions[0]


def test_stratified_skip_and_state_resume_the_epoch_with_its_own_threshold():
    contrast = [np.linspace(0.0, 1.0, 40), np.linspace(0.5, 0.1, 9)]

    def make():
        samplers = [ContrastWeightedSampler(c, seed=0, stream=i) for i, c in enumerate(contrast)]
        return StratifiedBatchSampler(samplers, [40, 9], batch_size=3, seed=0)

    def positions(steps):
        return [[draw.positions.tolist() for draw in step] for step in steps]

    sampler = make()
    sampler.set_epoch(2)
    iterator = iter(sampler)
    seen = [next(iterator) for _ in range(5)]
    state = sampler.state_dict()
    for session in sampler.samplers:  # a curriculum stage moves the threshold mid-epoch
        session.contrast_threshold = 0.3
    rest = list(iterator)
    assert len(seen) + len(rest) == 14  # ceil(40 / 3)

    resumed = make()
    for session in resumed.samplers:
        session.contrast_threshold = 0.3  # the curriculum re-applies its newest stage on resume
    resumed.load_state_dict(state)
    resumed.skip = 5
    assert positions(_epoch(resumed, 2)) == positions(rest)  # drawn with the epoch's own threshold
    later = _epoch(resumed, 3)  # the new threshold applies from the next epoch
    assert min(contrast[0][np.concatenate([step[0].positions for step in later])]) >= 0.3


def test_eval_sharding_covers_every_window_once_with_flagged_padding(monkeypatch):
    sizes = [7, 0, 4]
    slots = {0: [], 2: []}
    steps_per_rank = []
    for rank in (0, 1):
        _as_rank(monkeypatch, rank, 2)
        sampler = EvalBatchSampler(sizes, batch_size=3)
        steps = list(sampler)
        steps_per_rank.append(len(steps))
        assert len(steps) == len(sampler) == 2  # ceil(ceil(7 / 2) / 3)
        for step in steps:
            for draw in step:
                slots[draw.session] += list(zip(draw.positions.tolist(), draw.padding.tolist(), strict=True))
    real = {session: sorted(p for p, pad in pairs if not pad) for session, pairs in slots.items()}
    assert real == {0: list(range(7)), 2: list(range(4))}
    assert sum(pad for _, pad in slots[0]) == 1 and sum(pad for _, pad in slots[2]) == 0
    assert steps_per_rank[0] == steps_per_rank[1]


def test_lightning_never_wraps_the_samplers_in_a_distributed_sampler():
    for trainer in ("ddp", "ddp_cpu", "gpu", "cpu"):
        assert compose_config([f"trainer={trainer}"]).trainer.use_distributed_sampler is False
