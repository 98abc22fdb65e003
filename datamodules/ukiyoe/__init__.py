"""The `ukiyoe` system's data: procedural woodblock-style prints (or a user's ImageFolder) and the DataModule.

Names are imported lazily, so the print generator (and `python -m datamodules.ukiyoe`) load without torch.
"""

from datamodules.lazy import lazy_exports

_EXPORTS = {
    "UkiyoeDataModule": "datamodules.ukiyoe.datamodule",
    "PIGMENTS": "datamodules.ukiyoe.procedural",
    "SCENES": "datamodules.ukiyoe.procedural",
    "render_print": "datamodules.ukiyoe.procedural",
    "PrintSetConfig": "datamodules.ukiyoe.store",
    "generate": "datamodules.ukiyoe.store",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
