"""The v1 system: shared vision core + per-session readouts, losses, metrics, LightningModule."""

from models.v1.baselines import LNModel, NullModel
from models.v1.core import V1Core
from models.v1.losses import MaskedLoss
from models.v1.metrics import (
    MaskedPearson,
    OracleInformation,
    PoissonBPSAggregator,
    RepeatIndex,
    RepeatReliability,
)
from models.v1.network import MultiSessionNet, SessionSpec
from models.v1.readout_init import EnergySTA

__all__ = [
    "EnergySTA",
    "LNModel",
    "MaskedLoss",
    "MaskedPearson",
    "MultiSessionNet",
    "NullModel",
    "OracleInformation",
    "PoissonBPSAggregator",
    "RepeatIndex",
    "RepeatReliability",
    "SessionSpec",
    "V1Core",
]
