"""The cnn system's data: torchvision sets, scikit-learn's digits, procedural gratings, image folders.

`datamodules.cnn.ImageClassificationDM` is the name configs use; the exports load lazily, like every
system's.
"""

from datamodules.lazy import lazy_exports

_EXPORTS = {
    "ImageClassificationDM": "datamodules.cnn.datamodule",
    "DataNotFoundError": "datamodules.cnn.datasets",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)

# Renamed code; old checkpoints' stored configs name it (see training.toolkit.moved_modules).
MOVED = {
    "datamodules.cnn.ImageClassificationDataModule": "datamodules.cnn.ImageClassificationDM",
    "datamodules.cnn.datamodule.ImageClassificationDataModule": "datamodules.cnn.datamodule.ImageClassificationDM",
}
