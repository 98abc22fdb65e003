"""The v1 system: shared vision core + per-session readouts, losses, metrics, LightningModule."""
