"""The `design` system's data: a procedural renderer of graphic designs, its shards and its DataModule.

Names are imported lazily, so the renderer (and `python -m datamodules.design`) load without torch.
"""

from datamodules.lazy import lazy_exports

_EXPORTS = {
    "DesignDM": "datamodules.design.datamodule",
    "InnovationDM": "datamodules.design.innovation_datamodule",
    "DesignDataset": "datamodules.design.dataset",
    "DesignDataConfig": "datamodules.design.store",
    "generate": "datamodules.design.store",
    "ShardReader": "datamodules.design.store",
    "RenderedDesign": "datamodules.design.render",
    "render_design": "datamodules.design.render",
    "render_layout": "datamodules.design.render",
    "decode_structure": "datamodules.design.render",
    "grammar_scores": "datamodules.design.grammar",
    "plan_layout": "datamodules.design.planner",
    "sample_metadata": "datamodules.design.metadata",
    "DesignMeta": "datamodules.design.metadata",
    "Layout": "datamodules.design.layout",
    "plot_samples": "datamodules.design.plots",
}
__all__ = sorted(_EXPORTS)

# Moved or renamed code; old checkpoints' stored configs name it (see training.toolkit.moved_modules).
MOVED = {
    "datamodules.design.DesignDataModule": "datamodules.design.DesignDM",
    "datamodules.design.datamodule.DesignDataModule": "datamodules.design.datamodule.DesignDM",
    "datamodules.design.innovation": "datamodules.design.innovation_datamodule",
    "datamodules.design.innovation.InnovationDataModule": "datamodules.design.innovation_datamodule.InnovationDM",
    "datamodules.design.schema": "models.design.schema",  # shared with the plain networks, which import no data code
}

__getattr__ = lazy_exports(__name__, _EXPORTS)
