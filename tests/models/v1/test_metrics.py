"""Streaming metrics: equal to the direct formulas, exact when split across ranks, oracle and bug checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.v1.direct_metrics import (
    feve_direct,
    oracle_information_direct,
    pearson_direct,
    poisson_bps_direct,
)
from models.v1.metrics import (
    MaskedPearson,
    OracleInformation,
    PoissonBPSAggregator,
    RepeatIndex,
    RepeatReliability,
    bps_summary,
)

RNG = np.random.default_rng(0)


def simulated_session(num_bins: int = 3000, num_units: int = 6, seed: int = 0):
    """True rates with fast per-bin variation, Poisson spikes, a noisy prediction and a 0/1 mask."""
    rng = np.random.default_rng(seed)
    rates = np.exp(rng.normal(-1.5, 1.0, size=(num_bins, num_units)))
    robs = rng.poisson(rates).astype(np.float64)
    pred = rates * np.exp(rng.normal(0, 0.3, size=rates.shape))
    dfs = (rng.random(rates.shape) > 0.1).astype(np.float64)
    return pred, rates, robs, dfs


def stream(metric, arrays, num_chunks: int, seed: int = 1):
    """Update `metric` with random contiguous chunks of the (T, N) arrays."""
    num_bins = arrays[0].shape[0]
    cuts = np.sort(np.random.default_rng(seed).choice(np.arange(1, num_bins), num_chunks - 1, replace=False))
    for chunk in np.split(np.arange(num_bins), cuts):
        metric.update(*(torch.as_tensor(a[chunk], dtype=torch.float32) for a in arrays))
    return metric


def as_float32(*arrays):
    """The direct formulas see the same float32-rounded inputs as the streaming metric."""
    return [np.asarray(a, dtype=np.float32).astype(np.float64) for a in arrays]


def test_bits_per_spike_streaming_equals_direct_formula() -> None:
    pred, _, robs, dfs = as_float32(*simulated_session())
    robs[:, 2] = 0.0  # a silent unit: NaN, excluded from mean and median
    result = stream(PoissonBPSAggregator(pred.shape[1]), (pred, robs, dfs), num_chunks=7).compute()
    direct = poisson_bps_direct(pred, robs, dfs)
    assert np.isnan(result["bps"][2].item()) and np.isnan(direct["bps"][2])
    np.testing.assert_allclose(result["bps"].numpy(), direct["bps"], rtol=1e-9)
    for key in ("mean", "median", "pooled", "clamped_mean"):
        assert result[key].item() == pytest.approx(direct[key], rel=1e-9)


def test_clamped_mean_floors_each_unit_at_zero() -> None:
    summary = bps_summary(
        torch.tensor([2.0, -3.0, 1.0, 5.0], dtype=torch.float64), torch.tensor([1.0, 1.0, 0.0, 5.0])
    )
    np.testing.assert_allclose(summary["bps"].numpy(), [2.0, -3.0, np.nan, 1.0])
    assert summary["clamped_mean"].item() == pytest.approx((2 + 0 + 1) / 3)
    assert summary["mean"].item() == pytest.approx(0.0)
    assert summary["median"].item() == pytest.approx(1.0)
    assert summary["pooled"].item() == pytest.approx(4.0 / 7)


def test_masked_entries_and_padding_never_count() -> None:
    pred, _, robs, dfs = simulated_session(num_bins=500)
    clean = stream(PoissonBPSAggregator(6), (pred, robs, dfs), num_chunks=3).compute()
    padded = [
        np.concatenate([a, np.full((20, 6), fill)]) for a, fill in ((pred, np.inf), (robs, 7.0), (dfs, 0.0))
    ]
    with_padding = stream(PoissonBPSAggregator(6), padded, num_chunks=3).compute()
    torch.testing.assert_close(clean["bps"], with_padding["bps"], rtol=1e-12, atol=0)


@pytest.mark.parametrize("metric_class", [PoissonBPSAggregator, MaskedPearson, OracleInformation])
def test_two_ranks_summing_states_equal_one_process(metric_class) -> None:
    pred, rates, robs, dfs = simulated_session()
    arrays = (pred, robs, dfs) if metric_class is not OracleInformation else (pred, rates, robs, dfs)
    single = stream(metric_class(6), arrays, num_chunks=5).compute()
    rank0 = stream(metric_class(6), [a[::2] for a in arrays], num_chunks=3)  # a DistributedSampler split
    rank1 = stream(metric_class(6), [a[1::2] for a in arrays], num_chunks=4)
    for name in rank0._defaults:  # what the all-reduce (sum) does
        setattr(rank0, name, getattr(rank0, name) + getattr(rank1, name))
    for key, value in rank0.compute().items():
        torch.testing.assert_close(value, single[key], rtol=1e-12, atol=1e-15, equal_nan=True)


def test_oracle_streaming_equals_direct_formula() -> None:
    pred, rates, robs, dfs = as_float32(*simulated_session())
    result = stream(OracleInformation(6), (pred, rates, robs, dfs), num_chunks=6).compute()
    direct = oracle_information_direct(pred, rates, robs, dfs)
    for key, value in direct.items():
        np.testing.assert_allclose(np.asarray(result[key]), value, rtol=1e-9, err_msg=key)


def test_oracle_self_check() -> None:
    _, rates, robs, dfs = simulated_session(num_bins=20000, num_units=4)
    perfect = stream(OracleInformation(4), (rates, rates, robs, dfs), num_chunks=4).compute()
    assert abs(perfect["gap_pooled"].item()) < 1e-7
    assert perfect["fraction_pooled"].item() == pytest.approx(1.0, abs=1e-7)
    # The oracle's bits/spike on the sampled spikes lies within 2 standard errors of its information.
    difference = perfect["oracle_bps_pooled"] - perfect["information_pooled"]
    assert abs(difference.item()) < 2 * perfect["information_se_pooled"].item()

    mean_rate = (rates.astype(np.float32) * dfs).sum(0) / dfs.sum(0)
    constant = np.broadcast_to(mean_rate, rates.shape)
    null = stream(OracleInformation(4), (constant, rates, robs, dfs), num_chunks=4).compute()
    assert null["fraction_pooled"].item() == pytest.approx(0.0, abs=1e-5)
    np.testing.assert_allclose(null["fraction"].numpy(), 0.0, atol=1e-5)


def test_one_bin_misalignment_loses_at_least_a_fifth_of_the_bits() -> None:
    _, rates, robs, dfs = simulated_session(num_bins=20000, num_units=4)
    aligned = poisson_bps_direct(rates, robs, dfs)["pooled"]
    shifted = poisson_bps_direct(np.roll(rates, 1, axis=0), robs, dfs)["pooled"]
    assert aligned > 0.3
    assert shifted <= 0.8 * aligned


def test_masked_pearson_matches_numpy_corrcoef() -> None:
    pred, _, robs, dfs = as_float32(*simulated_session())
    result = stream(MaskedPearson(6), (pred, robs, dfs), num_chunks=4).compute()
    np.testing.assert_allclose(result["r"].numpy(), pearson_direct(pred, robs, dfs), rtol=1e-9)
    assert result["median"].item() == pytest.approx(np.median(pearson_direct(pred, robs, dfs)), rel=1e-9)


def repeated_responses(num_repeats=16, num_positions=400, model_error_var=(0.0, 0.25, 0.5), seed=0):
    """y[r, p, n] = s[p] + noise (var 1), pred = s[p] + e[p, n]; s and e have exactly var 1 and var v."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=num_positions)
    signal = (signal - signal.mean()) / signal.std(ddof=1)
    errors = []
    for variance in model_error_var:
        e = rng.normal(size=num_positions)
        e -= signal * (e @ signal) / (signal @ signal) + e.mean()  # orthogonal to the signal, zero mean
        errors.append(e / e.std(ddof=1) * np.sqrt(variance))
    errors = np.stack(errors, axis=1)
    noise = rng.normal(size=(num_repeats, num_positions, len(model_error_var)))
    robs = signal[None, :, None] + noise
    pred = np.broadcast_to(signal[:, None] + errors, robs.shape)
    return pred, robs


def test_feve_and_noise_corrected_correlation_on_synthetic_repeats() -> None:
    pred, robs = repeated_responses()
    repeats, positions, units = robs.shape
    # Timeline: 16 repeat trials of `positions` frames, interleaved with non-repeat trials.
    trials, frames, trial_ids = [], [], []
    for r in range(repeats):
        start = r * 2 * positions
        trials += [
            {"id": 2 * r, "start": start, "stop": start + positions, "repeat": 0},
            {"id": 2 * r + 1, "start": start + positions, "stop": start + 2 * positions, "repeat": None},
        ]
        frames.append(np.arange(start, start + positions))
        trial_ids.append(np.full(positions, 2 * r))
    index = RepeatIndex(trials)
    assert index.num_positions == positions
    position = index.positions(
        torch.as_tensor(np.concatenate(trial_ids)), torch.as_tensor(np.concatenate(frames))
    )
    assert torch.equal(position, torch.arange(positions).repeat(repeats))
    assert index.positions(torch.tensor([1, -1]), torch.tensor([positions, 0])).tolist() == [-1, -1]

    metric = RepeatReliability(units, positions)
    flat = [torch.as_tensor(a.reshape(-1, units)) for a in (pred, robs, np.ones_like(robs))]
    for chunk in np.array_split(np.arange(repeats * positions), 5):
        metric.update(flat[0][chunk], flat[1][chunk], flat[2][chunk], position[chunk])
    result = metric.compute()
    np.testing.assert_allclose(result["feve"].numpy(), feve_direct(pred, robs), rtol=1e-9)
    np.testing.assert_allclose(result["feve"].numpy(), [1.0, 0.75, 0.5], atol=0.05)
    np.testing.assert_allclose(result["cc_norm"].numpy(), np.sqrt([1.0, 1 / 1.25, 1 / 1.5]), atol=0.05)
    assert (result["cc_abs"] < result["cc_norm"]).all()
