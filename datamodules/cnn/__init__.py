"""The cnn system's data: torchvision sets, scikit-learn's digits, procedural gratings, image folders.

`datamodules.cnn.ImageClassificationDataModule` is the name configs (and the configs stored in
checkpoints) use; the exports load lazily, like every system's.
"""

from datamodules.lazy import lazy_exports

_EXPORTS = {
    "ImageClassificationDataModule": "datamodules.cnn.datamodule",
    "DataNotFoundError": "datamodules.cnn.datasets",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
