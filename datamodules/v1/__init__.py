"""The v1 system's data: session format, dataset configs, simulator, datamodule."""
