"""The v1 system's plain networks (`nn.Module`s; no Lightning, no data code). `forward(batch)` maps
`{session: {"stim", "eyepos", ["behavior"], ...}}` to `{session: rates}` (see models/v1/schema.py).

- `network.py`: `MultiSessionNet` — per-session adapters (`adapter.py`) and shifters (`shifter.py`), one
  shared core (`core.py`: `V1Core`) run once per batch, optional behaviour modulators (`modulator.py`),
  per-session Gaussian readouts (`readout.py`), the output nonlinearity (`output.py`).
- `baselines.py`: `NullNet` (each unit's mean rate) and `LNNet` (a per-unit linear-nonlinear model).
- `ensemble.py`: `MeanPrediction` (several trained networks predicting the mean of their rates;
  experiments/v1_ensemble.py).

`models.v1.module.MultiDatasetModel` trains any of them.
"""

from models.v1.nets.baselines import LNNet, NullNet
from models.v1.nets.core import V1Core
from models.v1.nets.network import MultiSessionNet, SessionSpec

__all__ = ["LNNet", "MultiSessionNet", "NullNet", "SessionSpec", "V1Core"]
