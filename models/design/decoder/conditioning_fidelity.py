"""Conditioning fidelity: how often a reader names a generated design's requested goal and format.

Two readers: the abstractor (through the encoder; `DesignFeatures`), and a classifier trained on the design
pixels at the decoder's resolution (`experiment=design_reader`; `ClassifierReading`), which reads the goal of
small designs far better than the abstractor can through a 128² encoder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torchmetrics import Metric

from models.common.classifier_features import ClassifierFeatures
from models.design.metadata_classes import JOINT, field_logits
from training.toolkit.checkpoints import stored_config
from training.toolkit.errors import UserError

FIELDS = ("goal", "format")


class ConditioningFidelity(Metric):
    """Accuracy per field of a reader's goal/format (arg-max of its logits) read from generated samples
    against the metadata they were generated for. Sums as states, so DDP results are exact."""

    full_state_update = False

    def __init__(self, fields: Sequence[str] = FIELDS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fields = tuple(fields)
        for field in self.fields:
            self.add_state(f"{field}_correct", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, reading: Mapping[str, torch.Tensor], requested: Mapping[str, torch.Tensor]) -> None:
        """`reading`: the reader's logits (B, classes) per field; `requested`: int64 (B,) per field."""
        for field in self.fields:
            hits = (reading[field].argmax(dim=1) == requested[field]).sum()
            setattr(self, f"{field}_correct", getattr(self, f"{field}_correct") + hits)
        self.total += requested[self.fields[0]].shape[0]

    def compute(self) -> dict[str, torch.Tensor]:
        """The share of samples whose field is read back as requested, per field."""
        return {field: getattr(self, f"{field}_correct") / self.total for field in self.fields}


class ClassifierReading(nn.Module):
    """A design classifier's (`experiment=design_reader`) reading of uint8 images: logits of the fields its
    label names (`models/design/metadata_classes.py`), the images resized to its training resolution."""

    def __init__(self, classifier: ClassifierFeatures, label: str) -> None:
        super().__init__()
        self.classifier = classifier
        self.label = label
        self.fields = FIELDS if label == JOINT else (label,)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, config_key: str) -> ClassifierReading:
        """The frozen reader of a design classifier run's checkpoint; `config_key` names the key that gave it."""
        classifier = ClassifierFeatures.from_checkpoint(path, config_key)
        label = ((stored_config(path, f"{config_key}={path}") or {}).get("data") or {}).get("label")
        if label is None:
            raise UserError(
                f"{config_key}={path} is not a classifier of design metadata (its run has no data.label); point it "
                "at a checkpoint of `python -m training.run experiment=design_reader`."
            )
        return cls(classifier, label).eval()

    def read(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.classifier(images)
        return field_logits(self.classifier.head(features), self.label)
