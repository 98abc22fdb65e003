"""A design's goal and format as the classes of an image classifier, and a classifier's logits read back as
goal and format.

`experiment=design_reader` trains one of the `cnn` system's classifiers on rendered designs with the label
`data.label` (one of `LABELS`); the decoder's conditioning fidelity reads its samples with it. `goal_format`
is the joint class (goal, format), 20 classes: one reader for both fields, each read as the arg-max of its
marginal (the log-sum-exp of the joint logits over the other field).
"""

from __future__ import annotations

import torch

from models.design.schema import FORMAT_NAMES, GOALS
from training.toolkit.errors import UserError

FIELD_CLASSES = {"goal": GOALS, "format": FORMAT_NAMES}
JOINT = "goal_format"
LABELS = (*FIELD_CLASSES, JOINT)


def check_label(label: str, key: str = "data.label") -> None:
    if label not in LABELS:
        raise UserError(f"{key}={label!r}: a design classifier's label is one of {', '.join(LABELS)}.")


def class_names(label: str) -> list[str]:
    """The classes of `label`, by index (the joint classes as `goal/format`, goal-major)."""
    check_label(label)
    if label == JOINT:
        return [f"{goal}/{name}" for goal in GOALS for name in FORMAT_NAMES]
    return list(FIELD_CLASSES[label])


def label_of(goal: torch.Tensor, format: torch.Tensor, label: str) -> torch.Tensor:
    """The class index of each design (int64 goal and format indices) under `label`."""
    check_label(label)
    if label == JOINT:
        return goal * len(FORMAT_NAMES) + format
    return goal if label == "goal" else format


def field_logits(logits: torch.Tensor, label: str) -> dict[str, torch.Tensor]:
    """The fields a classifier of `label` reads, as logits (B, classes of the field) of each: a single
    field's are the logits themselves, the joint's are each field's marginal log-probabilities (up to a
    constant per row)."""
    check_label(label)
    if label != JOINT:
        return {label: logits}
    joint = logits.view(-1, len(GOALS), len(FORMAT_NAMES))
    return {"goal": joint.logsumexp(dim=2), "format": joint.logsumexp(dim=1)}
