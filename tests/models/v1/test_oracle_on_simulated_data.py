"""The oracle checks on the simulator's own sessions: self-consistency and the 1-bin lag-bug detector."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules.v1.dataset_configs import load_dataset_configs
from datamodules.v1.session import Session
from datamodules.v1.simulator import simulate_tier
from models.v1.direct_metrics import poisson_bps_direct
from models.v1.metrics import OracleInformation


@pytest.fixture(scope="module")
def arrays(tmp_path_factory) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True rates, counts and validity of the T0 tiny session."""
    root = tmp_path_factory.mktemp("t0_tiny")
    configs = load_dataset_configs(
        simulate_tier("T0", "tiny", 0, data_dir=root, configs_dir=root / "configs")
    )
    session = Session(configs.sessions[0].folder(root))
    return np.asarray(session.truth("rates")), np.asarray(session.robs), np.asarray(session.dfs)


def test_the_oracle_scores_no_gap_and_its_bits_per_spike_match_its_information(arrays):
    rates, robs, dfs = (torch.as_tensor(a, dtype=torch.float64) for a in arrays)
    metric = OracleInformation(rates.shape[1])
    metric.update(rates, rates, robs, dfs)
    result = {key: float(value) for key, value in metric.compute().items() if value.ndim == 0}
    assert result["gap_pooled"] == pytest.approx(0.0, abs=1e-9)
    assert result["fraction_pooled"] == pytest.approx(1.0, abs=1e-9)
    assert (
        abs(result["oracle_bps_pooled"] - result["information_pooled"]) < 2 * result["information_se_pooled"]
    )
    assert result["information_pooled"] > 0.5  # simple cells on gaborium carry real information


def test_a_one_bin_misalignment_loses_at_least_a_fifth_of_the_bits(arrays):
    rates, robs, dfs = arrays
    aligned = poisson_bps_direct(rates, robs, dfs)["pooled"]
    both = dfs[1:] * dfs[:-1]
    # The classic lag bug, either way: predictions one bin late or one bin early for the counts.
    late = poisson_bps_direct(rates[:-1], robs[1:], both)["pooled"]
    early = poisson_bps_direct(rates[1:], robs[:-1], both)["pooled"]
    assert late <= 0.8 * aligned and early <= 0.8 * aligned, (aligned, late, early)
