"""The design pipeline's stage graph, declared once: each stage, its experiment, and the earlier stages whose
checkpoints it reads, under which config key.

    encoder -> abstractor -> reader -> decoder -> finetune -> innovation

The encoder and the abstractor are the judges of every later stage (the decoder's sample quality, the
phase 3 grammar reward); the reader, a classifier of the pixels, reads the decoder's samples' goal and format; the fine-tune starts from the decoder, the innovation loop samples with the
fine-tuned decoder. `experiments/design_pipeline.py` runs the stages in this order and hands each one
the best checkpoints of the stages it needs; the stages that cannot start without them (the fine-tune,
the innovation loop) check them with `Stage.require_checkpoints`, and the stages name a checkpoint's key
in errors with `Stage.key`. The pipeline runs at one of two sizes (`SIZES`, `Stage.run_at`): `cpu`, each
stage's own experiment, or `gpu`, the seed's 256² canvas on one GPU. No torch here: the pipeline script
reads it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.toolkit.errors import UserError

PIPELINE = "experiments/design_pipeline.py"
SIZES = ("cpu", "gpu")
# the phase 3 stages have no experiment of their own on a GPU (run alone they would miss their checkpoints in
# the GPU check): their CPU experiment on the GPU trainer, at the 256² decoder's resolution
GPU_PHASE3 = ("trainer=gpu", "trainer.precision=bf16-mixed", "data.resolution=256")
# the modules a stage that loads another stage's weights must build as that stage's run built them
ARCHITECTURE_KEYS = ("model.net", "model.meta_tokens", "model.noise_scheduler")


@dataclass(frozen=True)
class Stage:
    """One stage: a `python -m training.run experiment=<experiment>` run."""

    name: str
    experiment: str
    title: str  # how messages name the stage
    needs: Mapping[str, str]  # config key -> the earlier stage whose best checkpoint arrives under it
    # what the pipeline sets beside the hand-off: settings that need the earlier stages' runs (a stage's own
    # experiment also runs alone, without them)
    pipeline_settings: tuple[str, ...] = ()
    # the earlier stage whose weights this one starts from: the pipeline gives it that run's ARCHITECTURE_KEYS
    architecture_from: str | None = None
    gpu_experiment: str | None = None  # the stage at `gpu` size; None: `experiment` with `gpu_settings`
    gpu_settings: tuple[str, ...] = ()

    def run_at(self, size: str) -> tuple[str, tuple[str, ...]]:
        """(experiment, overrides) of this stage at pipeline size `size` (one of `SIZES`)."""
        if size not in SIZES:
            raise ValueError(f"size {size!r}: one of {SIZES}")
        if size == "gpu":
            return self.gpu_experiment or self.experiment, self.gpu_settings
        return self.experiment, ()

    def key(self, argument: str) -> str:
        """The config key under which the checkpoint argument `argument` (the key's last part, the
        module's constructor argument, e.g. `decoder_checkpoint`) arrives."""
        for key in self.needs:
            if key.rpartition(".")[2] == argument:
                return key
        raise KeyError(f"the design {self.name} stage is handed no {argument!r}")

    def example_path(self, key: str) -> str:
        """Where the checkpoint handed under `key` is found: its source stage's best checkpoint."""
        return f"logs/{STAGES[self.needs[key]].experiment}/runs/<run>/checkpoints/best-*.ckpt"

    def require_checkpoints(self, given: Mapping[str, Any]) -> None:
        """UserError naming every config key of this stage's hand-off left unset in `given` (the values by
        constructor argument, e.g. the module's hparams)."""
        missing = [key for key in self.needs if not given.get(key.rpartition(".")[2])]
        if missing:
            raise UserError(
                f"The design {self.title} needs the trained earlier stages, but {', '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not set. Run the stages in order with "
                f"`python {PIPELINE}` (it passes every checkpoint), or give each one on the command line, "
                f"e.g. {missing[0]}={self.example_path(missing[0])}."
            )


STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage("encoder", "design_encoder", "encoder", {}, gpu_experiment="design_encoder_gpu"),
        Stage(
            "abstractor",
            "design_abstractor",
            "abstractor",
            {"model.encoder_checkpoint": "encoder"},
            # half of each batch as the encoder reads it: the encoder-read gap in hierarchy fell from 12.6 to
            # 2.0 points and in contrast from 3.3 to 0.6 (docs/design.md)
            pipeline_settings=("model.encoded_share=0.5",),
            gpu_experiment="design_abstractor_gpu",
        ),
        # a classifier of the design pixels at the decoder's resolution: the decoder's test reads its samples'
        # goal and format with it (the abstractor reads the goal of real 32² designs 37 % of the time)
        Stage("reader", "design_reader", "goal/format reader", {}, gpu_experiment="design_reader_gpu"),
        Stage(
            "decoder",
            "design_decoder",
            "decoder",
            {
                "model.quality.encoder_checkpoint": "encoder",
                "model.quality.abstractor_checkpoint": "abstractor",
                "model.quality.reader_checkpoint": "reader",
            },
            gpu_experiment="design_decoder_gpu",
        ),
        Stage(
            "finetune",
            "design_finetune",
            "fine-tune",
            {
                "model.decoder_checkpoint": "decoder",
                "model.encoder_checkpoint": "encoder",
                "model.abstractor_checkpoint": "abstractor",
            },
            architecture_from="decoder",
            gpu_settings=GPU_PHASE3,
        ),
        Stage(
            "innovation",
            "design_innovation",
            "innovation loop",
            {
                "model.decoder_checkpoint": "finetune",
                "model.encoder_checkpoint": "encoder",
                "model.abstractor_checkpoint": "abstractor",
            },
            # the differentiable DDIM steps at 256²: recompute each in backward (off at 32², design_innovation.yaml)
            gpu_settings=(*GPU_PHASE3, "model.grad_checkpoint=true"),
        ),
    )
}


def existing_checkpoint(path: str | os.PathLike, key: str) -> Path:
    """`path` as a Path when it is a file; otherwise a UserError naming `key`."""
    found = Path(path).expanduser()
    if not found.is_file():
        raise UserError(
            f"{key}={path} does not exist. Point it at that stage's checkpoint "
            f"(logs/<experiment>/runs/<run>/checkpoints/*.ckpt), or run `python {PIPELINE}`."
        )
    return found
