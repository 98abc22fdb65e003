"""ResumableLoader: (seed, epoch) order, rank shards, and exact mid-epoch resume."""

import torch
from torch.utils.data import TensorDataset

from datamodules import loading
from datamodules.loading import ResumableLoader


def _loader(n=20, batch_size=3, seed=7, shuffle=True, drop_last=False):
    return ResumableLoader(
        TensorDataset(torch.arange(n)), batch_size=batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last
    )


def _epoch(loader, epoch):
    loader.sampler.set_epoch(epoch)
    return [batch[0].tolist() for batch in loader]


def test_order_depends_on_seed_and_epoch_only():
    assert _epoch(_loader(), 0) == _epoch(_loader(), 0)
    assert _epoch(_loader(), 0) != _epoch(_loader(), 1)
    assert _epoch(_loader(seed=1), 0) != _epoch(_loader(seed=2), 0)
    assert sorted(sum(_epoch(_loader(), 3), [])) == list(range(20))


def test_unshuffled_order_is_sequential():
    assert sum(_epoch(_loader(shuffle=False), 5), []) == list(range(20))


def test_resume_mid_epoch_yields_exactly_the_unseen_batches():
    full = _epoch(_loader(), 2)
    interrupted = _loader()
    interrupted.sampler.set_epoch(2)
    iterator = iter(interrupted)
    seen = [next(iterator)[0].tolist() for _ in range(4)]
    state = interrupted.state_dict()
    assert state == {"epoch": 2, "batches": 4}

    resumed = _loader()
    resumed.load_state_dict(state)
    rest = _epoch(resumed, 2)
    assert seen + rest == full
    # the skip applies once: the next epoch is whole again
    assert _epoch(resumed, 3) == _epoch(_loader(), 3)


def test_resume_state_from_an_earlier_epoch_is_ignored():
    resumed = _loader()
    resumed.load_state_dict({"epoch": 1, "batches": 7})  # checkpoint taken at the end of epoch 1
    assert _epoch(resumed, 2) == _epoch(_loader(), 2)


def test_ranks_get_equal_disjoint_shares(monkeypatch):
    shares = []
    for rank in range(3):
        monkeypatch.setattr(loading, "_rank_and_world", lambda rank=rank: (rank, 3))
        loader = _loader(n=20)
        assert len(loader.sampler) == 7
        shares.append(sum(_epoch(loader, 0), []))
    assert all(len(s) == 7 for s in shares)
    assert set(shares[0]) | set(shares[1]) | set(shares[2]) == set(range(20))  # 21 slots, one repeat


def test_iterating_does_not_touch_the_global_rng():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    _epoch(_loader(), 0)
    assert torch.equal(before, torch.get_rng_state())
