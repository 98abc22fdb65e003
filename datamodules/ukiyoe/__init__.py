"""The `ukiyoe` system's data: procedural woodblock-style prints (or a user's ImageFolder) and the DataModules.

Names are imported lazily, so the print generator (and `python -m datamodules.ukiyoe`) load without torch.
`UkiyoeDM` serves the GAN its prints; `target_datamodule.TargetDM` serves the NCA grow experiment its one
target print.
"""

from datamodules.lazy import lazy_exports

_EXPORTS = {
    "UkiyoeDM": "datamodules.ukiyoe.datamodule",
    "SCENES": "datamodules.ukiyoe.procedural",
    "render_print": "datamodules.ukiyoe.procedural",
    "PrintSetConfig": "datamodules.ukiyoe.store",
    "generate": "datamodules.ukiyoe.store",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)

# Moved or renamed code; old checkpoints' stored configs name it (see training.toolkit.moved_modules).
MOVED = {
    "datamodules.ukiyoe.UkiyoeDataModule": "datamodules.ukiyoe.UkiyoeDM",
    "datamodules.ukiyoe.datamodule.UkiyoeDataModule": "datamodules.ukiyoe.datamodule.UkiyoeDM",
    "datamodules.ukiyoe.target": "datamodules.ukiyoe.target_datamodule",
    "datamodules.ukiyoe.target.TargetDataModule": "datamodules.ukiyoe.target_datamodule.TargetDM",
    # the pigments are the model's vocabulary too (the palette starts from them)
    "datamodules.ukiyoe.PIGMENTS": "models.ukiyoe.schema.PIGMENTS",
}
