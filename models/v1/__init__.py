"""The v1 system's models: one shared vision core + one readout per recording session, and their training.

- `nets/`: the plain networks (`nn.Module`s; no Lightning, no data code): `MultiSessionNet` and its parts
  (adapter, `V1Core`, shifter, modulator, Gaussian readout, output nonlinearity) and the baselines
  (`NullNet`, `LNNet`).
- `module.py`: `MultiDatasetModel`, the LightningModule that trains any of them (loss, metrics, transfer,
  the checkpoint's session record); `losses.py`, `metrics.py`, `summaries.py`, `plots.py`, `recovery.py`,
  `readout_init.py`, `checkpoint_record.py`, `transfer.py` are its parts.
- `schema.py`: what the models read from the data side (the session view, ground-truth item names);
  the datamodules may import it, the models import no data code for it.
- `legacy.py`: migrations of the seed project's checkpoints (listed under `plugins` by the v1 experiments).
"""

# Moved or renamed code; old checkpoints' stored configs name it (see training.toolkit.moved_modules).
MOVED = {
    # the plain networks
    "models.v1.adapter": "models.v1.nets.adapter",
    "models.v1.baselines": "models.v1.nets.baselines",
    "models.v1.core": "models.v1.nets.core",
    "models.v1.modulator": "models.v1.nets.modulator",
    "models.v1.network": "models.v1.nets.network",
    "models.v1.output": "models.v1.nets.output",
    "models.v1.readout": "models.v1.nets.readout",
    "models.v1.shifter": "models.v1.nets.shifter",
    # baselines are networks, not LightningModules: their names no longer end in Model
    "models.v1.baselines.NullModel": "models.v1.nets.baselines.NullNet",
    "models.v1.baselines.LNModel": "models.v1.nets.baselines.LNNet",
    # ... and the names this package re-exported
    "models.v1.EnergySTA": "models.v1.readout_init.EnergySTA",
    "models.v1.LNModel": "models.v1.nets.baselines.LNNet",
    "models.v1.MaskedLoss": "models.v1.losses.MaskedLoss",
    "models.v1.MaskedPearson": "models.v1.metrics.MaskedPearson",
    "models.v1.MultiSessionNet": "models.v1.nets.network.MultiSessionNet",
    "models.v1.NullModel": "models.v1.nets.baselines.NullNet",
    "models.v1.OracleInformation": "models.v1.metrics.OracleInformation",
    "models.v1.PoissonBPSAggregator": "models.v1.metrics.PoissonBPSAggregator",
    "models.v1.RepeatIndex": "models.v1.metrics.RepeatIndex",
    "models.v1.RepeatReliability": "models.v1.metrics.RepeatReliability",
    "models.v1.SessionSpec": "models.v1.nets.network.SessionSpec",
    "models.v1.V1Core": "models.v1.nets.core.V1Core",
}
