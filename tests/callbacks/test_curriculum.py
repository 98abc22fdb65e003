"""CurriculumCallback: stage validation, stage changes on epoch/step schedules, and resume equal to uninterrupted."""

from __future__ import annotations

from typing import Any

import pytest
import pytorch_lightning as pl

from callbacks.curriculum import CurriculumCallback
from tests.callbacks.conftest import TinyRegressor, make_loader

STAGES = [
    {"name": "easy", "start": 0},
    {"name": "medium", "start": 1, "params": {"noise": 0.1}},
    {"name": "hard", "start": 3, "params": {"noise": 0.3}},
]


class StagedData(pl.LightningDataModule):
    """Records every stage it is told and when its loader is built."""

    def __init__(self, n: int = 8) -> None:
        super().__init__()
        self.n = n
        self.events: list[tuple[str, Any]] = []
        self.stage_name: str | None = None

    def set_curriculum_stage(self, name: str, params: dict) -> None:
        self.stage_name = name
        self.events.append(("stage", (name, params)))

    def train_dataloader(self):
        self.events.append(("train_dataloader", self.stage_name))
        return make_loader(n=self.n, batch_size=4)


class StagedRegressor(TinyRegressor):
    """Records, per training batch, the global step and the stage the model and the data are in."""

    def __init__(self) -> None:
        super().__init__()
        self.stage_name: str | None = None
        self.seen: list[tuple[int, str | None, str | None]] = []

    def set_curriculum_stage(self, name: str, params: dict) -> None:
        self.stage_name = name

    def training_step(self, batch, batch_idx):
        self.seen.append((self.global_step, self.stage_name, self.trainer.datamodule.stage_name))
        return super().training_step(batch, batch_idx)


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([], "is empty"),
        ([{"name": "a", "start": 1}], r"\[0\]\.start must be 0"),
        (
            [{"name": "a", "start": 0}, {"name": "b", "start": 4}, {"name": "c", "start": 2}],
            "strictly increasing",
        ),
        ([{"name": "a", "start": 0}, {"name": "a", "start": 2}], r"repeated: \['a'\]"),
        ([{"name": "a", "start": -1}], "integer >= 0"),
        ([{"name": "a"}], "keys name, start"),
        ([{"name": "a", "start": 0, "prams": {}}], "unknown keys"),
    ],
)
def test_invalid_stages_are_rejected(stages: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CurriculumCallback(stages)


def test_invalid_unit_is_rejected() -> None:
    with pytest.raises(ValueError, match="unit must be 'epoch' or 'step'"):
        CurriculumCallback(STAGES, unit="batch")  # type: ignore[arg-type]


def test_active_stage_lookup() -> None:
    curriculum = CurriculumCallback(STAGES)
    assert [curriculum.active_index(c) for c in range(6)] == [0, 1, 1, 2, 2, 2]


def _fit(make_trainer, callback: CurriculumCallback, ckpt_path: str | None = None, **trainer_kwargs):
    module, data = StagedRegressor(), StagedData(n=trainer_kwargs.pop("n", 8))
    trainer = make_trainer(callbacks=[callback], **trainer_kwargs)
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    return trainer, module, data


def test_epoch_stages_resume_equals_uninterrupted(make_trainer, tmp_path) -> None:
    _, full, full_data = _fit(make_trainer, CurriculumCallback(STAGES), max_epochs=4)  # 2 batches per epoch
    stages = [model for _, model, _ in full.seen]
    assert stages == ["easy"] * 2 + ["medium"] * 4 + ["hard"] * 2
    assert all(model == data for _, model, data in full.seen)
    assert [e for e in full_data.events if e[0] == "stage"] == [
        ("stage", (s["name"], s.get("params", {}))) for s in STAGES
    ]

    trainer, first, _ = _fit(make_trainer, CurriculumCallback(STAGES), max_epochs=2)
    ckpt = tmp_path / "epoch2.ckpt"
    trainer.save_checkpoint(ckpt)
    resumed_callback = CurriculumCallback(STAGES)
    trainer, second, data = _fit(make_trainer, resumed_callback, ckpt_path=str(ckpt), max_epochs=4)

    assert first.seen + second.seen == full.seen
    # the restored stage reaches the datamodule before its loader is built
    assert data.events[:2] == [("stage", ("medium", {"noise": 0.1})), ("train_dataloader", "medium")]
    assert data.events[2:] == [("stage", ("hard", {"noise": 0.3}))]
    assert resumed_callback.state_dict() == {"stage_index": 2, "stage_name": "hard"}
    assert float(trainer.callback_metrics["curriculum/stage_index"]) == 2.0


@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended")
def test_step_stages_resume_mid_epoch(make_trainer, tmp_path) -> None:
    stages = [{"name": "warm", "start": 0}, {"name": "main", "start": 3}, {"name": "cool", "start": 7}]
    _, full, _ = _fit(
        make_trainer, CurriculumCallback(stages, unit="step"), n=16, max_steps=10, max_epochs=-1
    )
    assert [(s, m) for s, m, _ in full.seen] == [
        (s, "warm" if s < 3 else "main" if s < 7 else "cool") for s in range(10)
    ]

    trainer, first, _ = _fit(
        make_trainer, CurriculumCallback(stages, unit="step"), n=16, max_steps=5, max_epochs=-1
    )
    ckpt = tmp_path / "step5.ckpt"
    trainer.save_checkpoint(ckpt)
    _, second, data = _fit(
        make_trainer,
        CurriculumCallback(stages, unit="step"),
        ckpt_path=str(ckpt),
        n=16,
        max_steps=10,
        max_epochs=-1,
    )
    assert [x[:2] for x in first.seen + second.seen] == [x[:2] for x in full.seen]
    assert data.events[0] == ("stage", ("main", {}))


def test_resume_with_renamed_stages_recomputes_the_stage(make_trainer, tmp_path) -> None:
    trainer, _, _ = _fit(make_trainer, CurriculumCallback(STAGES), max_epochs=2)
    trainer.save_checkpoint(tmp_path / "epoch2.ckpt")
    renamed = [{"name": "a", "start": 0}, {"name": "b", "start": 2}]
    with pytest.warns(UserWarning, match="recomputed from the restored epoch"):
        _, module, data = _fit(
            make_trainer, CurriculumCallback(renamed), ckpt_path=str(tmp_path / "epoch2.ckpt"), max_epochs=3
        )
    assert [m for _, m, _ in module.seen] == ["b", "b"]
    assert data.events[-1] == ("stage", ("b", {}))
