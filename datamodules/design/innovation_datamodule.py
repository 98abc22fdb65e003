"""The innovation loop's data: optimisation steps to train on, real designs to compare against.

The innovation loop optimises a module's own parameters (the sampler's initial latents) and reads no
data, but Lightning's loop counts steps by training batches: the training "batches" here are step indices
(`steps_per_epoch` per epoch; resumable mid-epoch like every design loader). The real designs stay for
testing: the test split as usual, and the training split as the FID/KID reference
(`reference_dataloader`). Use it with `num_val: 0` (there is nothing to validate).
"""

from __future__ import annotations

from typing import Any

from datamodules.design.datamodule import DesignDM
from datamodules.design.dataset import DesignDataset
from datamodules.loading import ResumableLoader
from training.toolkit.errors import UserError


class InnovationDM(DesignDM):
    """A DesignDM whose training loader yields `steps_per_epoch` step indices (batches of one)."""

    def __init__(self, steps_per_epoch: int = 25, **design: Any) -> None:
        if steps_per_epoch < 1:
            raise UserError(f"data.steps_per_epoch={steps_per_epoch}: take at least one step per epoch.")
        super().__init__(**design)
        self.steps_per_epoch = steps_per_epoch

    def setup(self, stage: str | None = None) -> None:
        """The splits `stage` needs, and the training split in every stage: it is the FID reference."""
        super().setup(stage)
        if "train" not in self.datasets:
            hp = self.hparams
            self.datasets["train"] = DesignDataset(self.config, "train", hp.storage, hp.data_dir)

    def train_dataloader(self) -> ResumableLoader:
        return ResumableLoader(range(self.steps_per_epoch), batch_size=1, seed=self.hparams.seed)

    def reference_dataloader(self) -> ResumableLoader:
        """The real training designs (the FID/KID reference)."""
        return super().train_dataloader()

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Design batches as DesignDM makes them; step indices as they are."""
        return super().on_after_batch_transfer(batch, dataloader_idx) if isinstance(batch, dict) else batch
