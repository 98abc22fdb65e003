"""Streaming evaluation metrics for spike-count predictions, exact under DDP.

Every state is a float64 per-unit (or per repeat position x unit) sum reduced with `sum`, so the result
is the same whether batches arrive on one process or are split across many (up to float64 rounding
of the additions), and padded DDP samples (dfs == 0) add nothing. Inputs are (B, N) tensors: `pred`
the predicted expected spikes per bin, `robs` the counts, `dfs` the 0/1 validity mask.
`models.v1.direct_metrics` computes the same numbers from whole arrays, as an independent reference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torchmetrics import Metric

LN2 = math.log(2.0)
EPS = 1e-8  # predicted rates are floored here before the log, as in MaskedLoss

ORACLE_PIECES = (
    "spikes",
    "expected_spikes",
    "oracle_gain_bits",
    "model_gain_bits",
    "information_bits",
    "gap_bits",
    "information_var_bits2",
)


def _masked_sum(mask: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Column sums of mask * values; masked entries never contribute, even if they are inf/NaN."""
    return torch.where(mask > 0, mask * values, 0.0).sum(dim=0)


def _float64(*tensors: torch.Tensor) -> list[torch.Tensor]:
    return [t.detach().to(torch.float64) for t in tensors]


def _nan_summary(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and median over the non-NaN entries (median interpolates, like numpy's)."""
    return torch.nanmean(values), torch.nanquantile(values, 0.5)


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return torch.where(valid, numerator / torch.where(valid, denominator, 1.0), math.nan)


def _pooled(numerator: torch.Tensor, denominator: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return torch.where(valid, numerator, 0.0).sum() / torch.where(valid, denominator, 0.0).sum()


def null_log_likelihood(spikes: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Sum m (y log ybar - ybar) with ybar = spikes / count, from the sums alone (0 for empty units)."""
    mean_rate = spikes / count.clamp_min(1e-300)
    return torch.xlogy(spikes, mean_rate) - spikes


def bps_summary(ll_gain_bits: torch.Tensor, spikes: torch.Tensor) -> dict[str, torch.Tensor]:
    """Bits/spike per unit (NaN without spikes) and its mean, median, spike-weighted pooled and clamped mean.

    Pass the concatenation of several sessions' `ll_gain_bits` and `spikes` to pool over sessions.
    """
    valid = spikes > 0
    bps = _ratio(ll_gain_bits, spikes, valid)
    mean, median = _nan_summary(bps)
    return {
        "bps": bps,
        "mean": mean,
        "median": median,
        "pooled": _pooled(ll_gain_bits, spikes, valid),
        "clamped_mean": torch.nanmean(bps.clamp_min(0.0)),
        "ll_gain_bits": ll_gain_bits,
        "spikes": spikes,
    }


class PoissonBPSAggregator(Metric):
    """Bits/spike of a Poisson prediction against the per-unit mean-rate null model.

    bps_n = (LL_n - LL0_n) / (ln2 * S_n) with LL = sum m (y log yhat - yhat), LL0 the same with the unit's
    mean rate ybar = S / M (S = sum m y, M = sum m), i.e. LL0 = S log ybar - S; the log(y!) terms cancel.
    compute() -> `bps_summary` keys: bps (N,), mean, median, pooled, clamped_mean, ll_gain_bits (N,), spikes (N,).
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, num_units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name in ("log_likelihood", "spikes", "count"):
            self.add_state(name, default=torch.zeros(num_units, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, robs: torch.Tensor, dfs: torch.Tensor) -> None:
        pred, robs, mask = _float64(pred, robs, dfs)
        self.log_likelihood += _masked_sum(mask, torch.xlogy(robs, pred.clamp_min(EPS)) - pred)
        self.spikes += _masked_sum(mask, robs)
        self.count += _masked_sum(mask, torch.ones_like(mask))

    def compute(self) -> dict[str, torch.Tensor]:
        gain = (self.log_likelihood - null_log_likelihood(self.spikes, self.count)) / LN2
        return bps_summary(gain, self.spikes)


class MaskedPearson(Metric):
    """Per-unit Pearson correlation of prediction and spike counts over valid entries.

    compute() -> {"r": (N,) (NaN for constant or empty units), "mean", "median"}.
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, num_units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name in ("count", "sum_x", "sum_y", "sum_xy", "sum_xx", "sum_yy"):
            self.add_state(name, default=torch.zeros(num_units, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, robs: torch.Tensor, dfs: torch.Tensor) -> None:
        x, y, mask = _float64(pred, robs, dfs)
        self.count += _masked_sum(mask, torch.ones_like(mask))
        self.sum_x += _masked_sum(mask, x)
        self.sum_y += _masked_sum(mask, y)
        self.sum_xy += _masked_sum(mask, x * y)
        self.sum_xx += _masked_sum(mask, x * x)
        self.sum_yy += _masked_sum(mask, y * y)

    def compute(self) -> dict[str, torch.Tensor]:
        n = self.count.clamp_min(1e-300)
        cov = self.sum_xy - self.sum_x * self.sum_y / n
        var_x = self.sum_xx - self.sum_x**2 / n
        var_y = self.sum_yy - self.sum_y**2 / n
        r = _ratio(cov, torch.sqrt(var_x * var_y), (var_x > 0) & (var_y > 0))
        mean, median = _nan_summary(r)
        return {"r": r, "mean": mean, "median": median}


class RepeatIndex:
    """Maps samples to positions in the repeated stimulus sequences (fixrsvp) for `RepeatReliability`.

    Trials with the same `repeat` value (meta.json) show the same sequence; the position of timeline
    frame t of such a trial is offset(repeat) + t - trial start, in [0, num_positions). Other samples
    (non-repeat trials, trial id -1) get -1.
    """

    def __init__(self, trials: Sequence[Mapping[str, Any]]) -> None:
        repeats = [trial for trial in trials if trial.get("repeat") is not None]
        lengths: dict[Any, int] = {}
        for trial in repeats:
            lengths[trial["repeat"]] = max(lengths.get(trial["repeat"], 0), trial["stop"] - trial["start"])
        offsets, total = {}, 0
        for sequence in sorted(lengths):
            offsets[sequence], total = total, total + lengths[sequence]
        self.num_positions = total
        size = max((int(trial["id"]) for trial in trials), default=-1) + 1
        self._start = torch.zeros(size, dtype=torch.long)
        self._offset = torch.full((size,), -1, dtype=torch.long)
        for trial in repeats:
            self._start[trial["id"]] = trial["start"]
            self._offset[trial["id"]] = offsets[trial["repeat"]]

    def positions(self, trial: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
        """(B,) repeat positions of samples with trial ids `trial` and timeline indices `frame`; -1 elsewhere."""
        if self._offset.numel() == 0:
            return torch.full_like(trial, -1)
        if self._offset.device != trial.device:
            self._start, self._offset = self._start.to(trial.device), self._offset.to(trial.device)
        index = trial.clamp(0, self._offset.numel() - 1)
        offset = self._offset[index]
        valid = (trial >= 0) & (trial < self._offset.numel()) & (offset >= 0)
        return torch.where(valid, offset + frame - self._start[index], -1)


class RepeatReliability(Metric):
    """FEVE and noise-corrected correlation on repeated stimuli, from sums per (repeat position, unit).

    With y the counts and yhat the predictions at valid repeat samples (n in all; n_p at position p):
      noise variance   s2_noise = sum_p sum_r (y - ybar_p)^2 / sum_p (n_p - 1)   (pooled across repeats)
      total variance   s2_total = sum (y - ybar)^2 / (n - 1);  MSE = sum (y - yhat)^2 / n
      FEVE = 1 - (MSE - s2_noise) / (s2_total - s2_noise)               (Cadena et al. 2019)
    Over the P positions seen, with ybar_p / yhatbar_p the repeat means:
      cc_abs  = corr_p(ybar_p, yhatbar_p)
      cc_norm = cov_p(ybar_p, yhatbar_p) / sqrt(var_p(yhatbar_p) * signal_var), where
      signal_var = var_p(ybar_p) - s2_noise * mean_p(1 / n_p) (the trial-averaging noise removed).
    `update(pred, robs, dfs, position)` takes positions from `RepeatIndex.positions` (-1 = not a repeat).
    compute() -> {"feve", "cc_abs", "cc_norm"} (N,) each, plus "<name>_mean" and "<name>_median".
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, num_units: int, num_positions: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name in ("count", "sum_y", "sum_yy", "sum_p", "sum_pp", "sum_yp"):
            default = torch.zeros(num_positions, num_units, dtype=torch.float64)
            self.add_state(name, default=default, dist_reduce_fx="sum")

    def update(
        self, pred: torch.Tensor, robs: torch.Tensor, dfs: torch.Tensor, position: torch.Tensor
    ) -> None:
        p, y, mask = _float64(pred, robs, dfs)
        mask = torch.where(position[:, None] >= 0, mask, 0.0)
        index = position.clamp_min(0)
        for state, values in (
            (self.count, torch.ones_like(y)),
            (self.sum_y, y),
            (self.sum_yy, y * y),
            (self.sum_p, p),
            (self.sum_pp, p * p),
            (self.sum_yp, y * p),
        ):
            state.index_add_(0, index, torch.where(mask > 0, mask * values, 0.0))

    def compute(self) -> dict[str, torch.Tensor]:
        n_p = self.count
        seen = n_p > 0
        safe_n_p = torch.where(seen, n_p, 1.0)
        n = n_p.sum(0)
        within = torch.where(seen, self.sum_yy - self.sum_y**2 / safe_n_p, 0.0).sum(0)
        noise_var = within / torch.where(seen, n_p - 1, 0.0).sum(0)
        total_var = (self.sum_yy.sum(0) - self.sum_y.sum(0) ** 2 / n) / (n - 1)
        mse = (self.sum_yy - 2 * self.sum_yp + self.sum_pp).sum(0) / n
        feve = 1 - (mse - noise_var) / (total_var - noise_var)

        num_seen = seen.sum(0)
        y_mean = self.sum_y / safe_n_p
        p_mean = self.sum_p / safe_n_p
        y_dev = torch.where(seen, y_mean - y_mean.where(seen, 0.0).sum(0) / num_seen, 0.0)
        p_dev = torch.where(seen, p_mean - p_mean.where(seen, 0.0).sum(0) / num_seen, 0.0)
        var_y = y_dev.square().sum(0) / (num_seen - 1)
        var_p = p_dev.square().sum(0) / (num_seen - 1)
        cov = (y_dev * p_dev).sum(0) / (num_seen - 1)
        signal_var = var_y - noise_var * torch.where(seen, 1 / safe_n_p, 0.0).sum(0) / num_seen
        results = {
            "feve": feve,
            "cc_abs": _ratio(cov, torch.sqrt(var_y * var_p), (var_y > 0) & (var_p > 0)),
            "cc_norm": _ratio(cov, torch.sqrt(var_p * signal_var), (signal_var > 0) & (var_p > 0)),
        }
        for name, values in list(results.items()):
            results[f"{name}_mean"], results[f"{name}_median"] = _nan_summary(values)
        return results


def oracle_summary(pieces: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-unit and pooled oracle numbers from the per-unit `ORACLE_PIECES` (concatenate to pool sessions)."""
    spikes, expected = pieces["spikes"], pieces["expected_spikes"]
    has_spikes, has_rate = spikes > 0, expected > 0
    informative = has_rate & (pieces["information_bits"] > 0)
    fraction = 1 - _ratio(pieces["gap_bits"], pieces["information_bits"], informative)
    oracle_bps_pooled = _pooled(pieces["oracle_gain_bits"], spikes, has_spikes)
    model_bps_pooled = _pooled(pieces["model_gain_bits"], spikes, has_spikes)
    return {
        "oracle_bps": _ratio(pieces["oracle_gain_bits"], spikes, has_spikes),
        "oracle_bps_pooled": oracle_bps_pooled,
        "oracle_bps_median": torch.nanquantile(_ratio(pieces["oracle_gain_bits"], spikes, has_spikes), 0.5),
        "model_bps": _ratio(pieces["model_gain_bits"], spikes, has_spikes),
        "model_bps_pooled": model_bps_pooled,
        "bps_fraction_pooled": model_bps_pooled / oracle_bps_pooled,
        "information": _ratio(pieces["information_bits"], expected, has_rate),
        "information_pooled": _pooled(pieces["information_bits"], expected, has_rate),
        "information_se": _ratio(pieces["information_var_bits2"].sqrt(), expected, has_rate),
        "information_se_pooled": torch.where(has_rate, pieces["information_var_bits2"], 0.0).sum().sqrt()
        / torch.where(has_rate, expected, 0.0).sum(),
        "gap": _ratio(pieces["gap_bits"], expected, has_rate),
        "gap_pooled": _pooled(pieces["gap_bits"], expected, has_rate),
        "fraction": fraction,
        "fraction_pooled": 1 - _pooled(pieces["gap_bits"], pieces["information_bits"], has_rate),
        "fraction_median": torch.nanquantile(fraction, 0.5),
    }


class OracleInformation(Metric):
    """Simulation only: how much of the true rate's information a prediction recovers.

    With true rates lam, prediction lamhat, mask m and lambar = sum m lam / sum m per unit (all in bits
    per expected spike, i.e. divided by ln2 * sum m lam):
      information I = sum m [lam log(lam / lambar) - lam + lambar]   (the oracle's expected bits/spike)
      gap           = sum m [lam log(lam / lamhat) - lam + lamhat]   (expected KL loss of the prediction)
      fraction      = 1 - gap / I    (noise-free: no spike noise enters; 1 for lamhat = lam, 0 for lambar)
    plus the oracle's and the model's bits/spike on the observed spikes (`PoissonBPSAggregator`'s formula)
    and the oracle's Poisson standard error, se = sqrt(sum m lam log^2(lam / lambar)) / (ln2 sum m lam).
    Per unit and pooled (sums over units of numerators / denominators); see `oracle_summary` for keys.
    `update(pred, rates, robs, dfs)`; compute() also returns the per-unit `ORACLE_PIECES`.
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False
    _sums = (
        "count",
        "spikes",
        "ll_true",
        "ll_model",
        "expected",
        "predicted",
        "lam_log_lam",
        "lam_log_pred",
        "lam_log2_lam",
    )

    def __init__(self, num_units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name in self._sums:
            self.add_state(name, default=torch.zeros(num_units, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, rates: torch.Tensor, robs: torch.Tensor, dfs: torch.Tensor) -> None:
        pred, lam, y, mask = _float64(pred, rates, robs, dfs)
        pred = pred.clamp_min(EPS)
        log_lam = torch.log(lam.clamp_min(1e-300))
        self.count += _masked_sum(mask, torch.ones_like(mask))
        self.spikes += _masked_sum(mask, y)
        self.ll_true += _masked_sum(mask, torch.xlogy(y, lam) - lam)
        self.ll_model += _masked_sum(mask, torch.xlogy(y, pred) - pred)
        self.expected += _masked_sum(mask, lam)
        self.predicted += _masked_sum(mask, pred)
        self.lam_log_lam += _masked_sum(mask, lam * log_lam)
        self.lam_log_pred += _masked_sum(mask, lam * torch.log(pred))
        self.lam_log2_lam += _masked_sum(mask, lam * log_lam**2)

    def compute(self) -> dict[str, torch.Tensor]:
        null = null_log_likelihood(self.spikes, self.count)
        log_mean = torch.log((self.expected / self.count.clamp_min(1e-300)).clamp_min(1e-300))
        # sum m lam log(lam/lambar) - lam + lambar: the last two cancel because lambar = sum m lam / sum m.
        information = self.lam_log_lam - self.expected * log_mean
        variance = self.lam_log2_lam - 2 * log_mean * self.lam_log_lam + log_mean**2 * self.expected
        pieces = {
            "spikes": self.spikes,
            "expected_spikes": self.expected,
            "oracle_gain_bits": (self.ll_true - null) / LN2,
            "model_gain_bits": (self.ll_model - null) / LN2,
            "information_bits": information / LN2,
            "gap_bits": (self.lam_log_lam - self.lam_log_pred - self.expected + self.predicted) / LN2,
            "information_var_bits2": variance.clamp_min(0.0) / LN2**2,
        }
        return oracle_summary(pieces) | pieces
