"""EnergySTA finds where local contrast energy drives each unit, for a readout's starting position."""

from __future__ import annotations

import torch

from models.v1.readout_init import EnergySTA
from tests.models.v1.tiny_models import tiny_net


def test_energy_sta_finds_energy_driven_units_and_initialises_readouts() -> None:
    generator = torch.Generator().manual_seed(0)
    centres = [(3, 12), (10, 5), (8, 8)]  # (row, column) of each unit's receptive field
    sta = EnergySTA(lags=[1, 2])
    for _ in range(4):
        stim = torch.randn(500, 4, 16, 16, generator=generator)
        # Each unit fires with the contrast energy at its centre one lag back (lag index 2), like a complex cell.
        energy = torch.stack(
            [stim[:, 2, r - 1 : r + 2, c - 1 : c + 2].square().mean((1, 2)) for r, c in centres], 1
        )
        robs = torch.poisson(0.2 * energy, generator=generator)
        dfs = torch.ones_like(robs)
        dfs[:10] = 0  # masked samples are ignored
        sta.update(stim, robs, dfs)
    positions = sta.positions()
    expected = torch.tensor([[(2 * c + 1) / 16 - 1, (2 * r + 1) / 16 - 1] for r, c in centres])
    assert (positions - expected).abs().max() <= 2 / 16 + 1e-6  # within one pixel of a 16-pixel frame

    net = tiny_net()
    net.init_readout_positions("alpha", positions)
    torch.testing.assert_close(net.readouts["alpha"].positions, positions)
