"""V_Meta of one design (goal, format, tone), drawn uniformly so every condition is equally common."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.design.schema import FORMAT_NAMES, FORMATS, GOALS, TONE_AXES


@dataclass(frozen=True)
class DesignMeta:
    """What a design is for (`goal`), its shape (`format`) and its `tone` (energy, seriousness in [0, 1])."""

    goal: str
    format: str
    tone: tuple[float, float]

    @property
    def energy(self) -> float:
        return self.tone[0]

    @property
    def seriousness(self) -> float:
        return self.tone[1]

    @property
    def goal_index(self) -> int:
        return GOALS.index(self.goal)

    @property
    def format_index(self) -> int:
        return FORMAT_NAMES.index(self.format)

    @property
    def aspect(self) -> tuple[int, int]:
        """(width, height) ratio of the format."""
        return FORMATS[self.format]


def sample_metadata(rng: np.random.Generator) -> DesignMeta:
    """Goal and format uniform over the schema's names, each tone axis uniform in [0, 1]."""
    goal = GOALS[int(rng.integers(len(GOALS)))]
    format_name = FORMAT_NAMES[int(rng.integers(len(FORMAT_NAMES)))]
    tone = tuple(float(t) for t in rng.uniform(0.0, 1.0, len(TONE_AXES)))
    return DesignMeta(goal, format_name, tone)  # type: ignore[arg-type]
