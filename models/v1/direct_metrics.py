"""Reference formulas: the streaming metrics of `models.v1.metrics`, computed from whole arrays at once.

Written independently of the sum-based states (element-wise null models, numpy), so tests can check
streaming == direct. Arrays are (T, N) numpy arrays; the mask is 0/1 (`dfs`).
"""

from __future__ import annotations

import numpy as np

EPS = 1e-8
LN2 = np.log(2.0)


def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x * log(y) with 0 where x == 0 (as torch.xlogy)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, 0.0, x * np.log(np.where(x == 0, 1.0, y)))


def poisson_bps_direct(pred: np.ndarray, robs: np.ndarray, dfs: np.ndarray) -> dict[str, np.ndarray | float]:
    """Bits/spike per unit against the per-unit mean rate, and its mean/median/pooled/clamped mean."""
    pred, robs, mask = (np.asarray(a, dtype=np.float64) for a in (pred, robs, dfs))
    pred = np.maximum(pred, EPS)
    spikes = (mask * robs).sum(0)
    mean_rate = spikes / np.maximum(mask.sum(0), 1e-300)
    ll_model = (mask * (_xlogy(robs, pred) - pred)).sum(0)
    ll_null = (mask * (_xlogy(robs, np.broadcast_to(mean_rate, robs.shape)) - mean_rate)).sum(0)
    gain = (ll_model - ll_null) / LN2
    valid = spikes > 0
    bps = np.where(valid, gain / np.where(valid, spikes, 1.0), np.nan)
    return {
        "bps": bps,
        "mean": float(np.nanmean(bps)),
        "median": float(np.nanmedian(bps)),
        "pooled": float(gain[valid].sum() / spikes[valid].sum()),
        "clamped_mean": float(np.nanmean(np.maximum(bps, 0.0))),
    }


def oracle_information_direct(
    pred: np.ndarray, rates: np.ndarray, robs: np.ndarray, dfs: np.ndarray
) -> dict[str, np.ndarray | float]:
    """Oracle information, gap and fraction 1 - gap/I per unit and pooled, plus oracle/model bits/spike."""
    pred, lam, mask = (np.asarray(a, dtype=np.float64) for a in (pred, rates, dfs))
    pred = np.maximum(pred, EPS)
    lam_bar = (mask * lam).sum(0) / mask.sum(0)
    expected = (mask * lam).sum(0)
    info_terms = _xlogy(lam, lam / lam_bar) - lam + lam_bar
    gap_terms = _xlogy(lam, lam / pred) - lam + pred
    information_num = (mask * info_terms).sum(0) / LN2
    gap_num = (mask * gap_terms).sum(0) / LN2
    fraction = 1 - gap_num / information_num
    oracle = poisson_bps_direct(lam, robs, dfs)
    model = poisson_bps_direct(pred, robs, dfs)
    return {
        "information": information_num / expected,
        "information_pooled": float(information_num.sum() / expected.sum()),
        "gap": gap_num / expected,
        "gap_pooled": float(gap_num.sum() / expected.sum()),
        "fraction": fraction,
        "fraction_pooled": float(1 - gap_num.sum() / information_num.sum()),
        "fraction_median": float(np.nanmedian(fraction)),
        "oracle_bps": oracle["bps"],
        "oracle_bps_pooled": oracle["pooled"],
        "model_bps_pooled": model["pooled"],
    }


def pearson_direct(pred: np.ndarray, robs: np.ndarray, dfs: np.ndarray) -> np.ndarray:
    """Per-unit correlation over valid entries (np.corrcoef)."""
    valid = np.asarray(dfs) > 0
    return np.array(
        [np.corrcoef(pred[valid[:, n], n], robs[valid[:, n], n])[0, 1] for n in range(pred.shape[1])]
    )


def feve_direct(pred: np.ndarray, robs: np.ndarray) -> np.ndarray:
    """FEVE per unit from complete repeats: arrays (R repeats, P positions, N units), all valid."""
    pred, robs = np.asarray(pred, dtype=np.float64), np.asarray(robs, dtype=np.float64)
    noise_var = robs.var(axis=0, ddof=1).mean(axis=0)
    total_var = robs.reshape(-1, robs.shape[-1]).var(axis=0, ddof=1)
    mse = ((robs - pred) ** 2).mean(axis=(0, 1))
    return 1 - (mse - noise_var) / (total_var - noise_var)
