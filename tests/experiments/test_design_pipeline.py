"""experiments/design_pipeline.py: each stage reads the previous stages' best checkpoints (the fine-tune also
its decoder's architecture); a rerun skips finished stages; the fine-tuned decoder samples with task=sample;
`--size gpu` composes every stage at 256² on the GPU trainer."""

import json
import os
import re
from unittest import mock

import hydra
import numpy as np
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from models.design.stages import STAGES
from tests.helpers import cli_env, compose_config, load_script, quiet_trainer, read_summary, run_main
from tests.models.design.phase3_stages import DECODER_CONFIG, write_stages
from tests.models.design.tiny_decoder import RESOLUTION
from training.toolkit.errors import UserError

design_pipeline = load_script("experiments/design_pipeline.py")

SMALL = [
    "data.resolution=32",
    "data.num_train=32",
    "data.num_val=8",
    "data.num_test=8",
    "data.batch_size=8",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "callbacks.model_summary=null",
]
STAGE_SETTINGS = [
    *("--set", "decoder:model.grid_per_pair=0", "--set", "decoder:model.quality.num_samples=8"),
    *("--set", "decoder:model.sample_steps=2", "--set", "finetune:model.sample_steps=2"),
    *("--set", "finetune:model.eval_designs=4", "--set", "finetune:model.grid_per_pair=0"),
    *("--set", "innovation:model.num_latents=4", "--set", "innovation:model.sample_steps=2"),
    *("--set", "innovation:data.steps_per_epoch=2"),
    # FID/KID on the trained design features (Inception at 299² would add minutes on a CPU; its own tests:
    # tests/models/common/test_inception_fid.py)
    *("--set", "decoder:model.quality.feature=design", "--set", "finetune:model.quality.feature=design"),
    *("--set", "innovation:model.feature=design"),
]


def pipeline(root, *args, overrides=()):
    """`python experiments/design_pipeline.py ARGS` at the tests' size, then `overrides` for every stage (its
    stages still run as processes of their own)."""
    with mock.patch.dict(os.environ, cli_env(root), clear=True):
        design_pipeline.main([*args, *STAGE_SETTINGS, *SMALL, *overrides])


def stage_run(root, experiment):
    return root / "logs" / experiment / "runs" / "t"


def test_the_pipeline_runs_the_stage_graph_of_the_design_models():
    assert design_pipeline.STAGES is STAGES  # declared once, in models/design/stages.py
    assert design_pipeline.parse_args([]).stages == list(STAGES)


def test_pipeline_hands_each_stage_the_previous_best_checkpoints_and_resumes_per_stage(tmp_path, capsys):
    pipeline(tmp_path, "--run-name", "t", "--stages", "encoder,abstractor")
    encoder = read_summary(stage_run(tmp_path, "design_encoder"))
    abstractor_config = OmegaConf.load(stage_run(tmp_path, "design_abstractor") / "config.yaml")
    assert abstractor_config.model.encoder_checkpoint == encoder["best_checkpoint"]
    assert abstractor_config.model.encoded_share == 0.5  # the stage's pipeline setting
    abstractor = read_summary(stage_run(tmp_path, "design_abstractor"))
    assert 0.0 <= abstractor["metrics"]["test/encoded/goal_acc"] <= 1.0

    # The rerun skips the finished stages (their run directories are untouched) and runs the rest.
    capsys.readouterr()
    pipeline(tmp_path, "--run-name", "t")
    done = capsys.readouterr().out
    assert "encoder: finished earlier" in done and "abstractor: finished earlier" in done
    assert read_summary(stage_run(tmp_path, "design_encoder"))["attempts"] == 1

    decoder = read_summary(stage_run(tmp_path, "design_decoder"))
    for key in ("fid/model", "fid/real_vs_real", "fid/noise", "fid/untrained", "fid_relative/model",
                "kid/model", "conditioning/goal/model", "conditioning/format/model",
                "conditioning_classifier/goal/model", "conditioning_classifier/format/real"):  # fmt: skip
        assert np.isfinite(decoder["metrics"][f"test/{key}"]), key
    assert re.fullmatch(r"design \(weights sha1 [0-9a-f]{8}\)", decoder["fid_features"])  # beside the numbers
    finetune_config = OmegaConf.load(stage_run(tmp_path, "design_finetune") / "config.yaml")
    assert finetune_config.model.decoder_checkpoint == decoder["best_checkpoint"]
    finetune = read_summary(stage_run(tmp_path, "design_finetune"))
    assert np.isfinite(finetune["metrics"]["test/grammar_gain"]) and finetune["metrics"]["test/fid_ratio"] > 0
    innovation_config = OmegaConf.load(stage_run(tmp_path, "design_innovation") / "config.yaml")
    assert innovation_config.model.decoder_checkpoint == finetune["best_checkpoint"]
    innovation = read_summary(stage_run(tmp_path, "design_innovation"))
    assert np.isfinite(innovation["metrics"]["test/grammar/after/mean"])
    assert (
        finetune["fid_features"] == innovation["fid_features"] == decoder["fid_features"]
    )  # the same judges
    record = json.loads((tmp_path / "logs" / "design_pipeline" / "t.json").read_text())
    assert list(record) == ["encoder", "abstractor", "reader", "decoder", "finetune", "innovation"]
    assert record["decoder"]["fid_features"] == decoder["fid_features"]

    # The fine-tuned decoder is a decoder: task=sample writes the requested designs from its checkpoint.
    run_main(tmp_path, "task=sample", f"ckpt_path={finetune['best_checkpoint']}", "sample.num=3",
            "+sample.options.goal=sell", "+sample.options.steps=2")  # fmt: skip
    (samples_dir,) = stage_run(tmp_path, "design_finetune").glob("sample_*/samples")
    samples = np.load(samples_dir / "samples.npz")
    assert samples["images"].shape[0] == 3 and (samples_dir / "grid.png").is_file()
    assert (samples["goal"] == list(samples["goal_names"]).index("sell")).all()

    # Phase 3's experiments also run with debug=fdr from those checkpoints, each with its own key for the
    # design features (one multirun cannot set both: the fine-tune's model.quality.feature, innovation's
    # model.feature).
    checkpoints = {stage: read_summary(stage_run(tmp_path, f"design_{stage}"))["best_checkpoint"]
                   for stage in ("encoder", "abstractor", "decoder")}  # fmt: skip
    for experiment, feature in (
        ("design_finetune", "model.quality.feature"),
        ("design_innovation", "model.feature"),
    ):
        run_main(
            tmp_path, f"experiment={experiment}", "debug=fdr", "run_name=fdr", f"{feature}=design",
            *(f"model.{stage}_checkpoint={path}" for stage, path in checkpoints.items()), "model.sample_steps=2",
            "data.resolution=32", "data.num_train=16", "data.num_val=8", "data.num_test=8",
            "data.batch_size=4", "callbacks.model_summary=null",
        )  # fmt: skip
        assert read_summary(stage_run(tmp_path, experiment).with_name("fdr"))["status"] == "finished", (
            experiment
        )


def test_gpu_size_runs_every_stage_at_the_seeds_canvas_on_the_gpu_trainer():
    assert design_pipeline.parse_args(["--size", "gpu"]).run_name == "pipeline_gpu"  # beside the CPU runs
    configs = {}
    for name, stage in STAGES.items():
        experiment, settings = stage.run_at("gpu")
        hand_off = [f"{key}=/runs/{source}.ckpt" for key, source in stage.needs.items()]
        configs[name] = compose_config(
            [f"experiment={experiment}", *hand_off, *settings, *stage.pipeline_settings]
        )
        assert configs[name].trainer.accelerator == "gpu", name
        assert configs[name].trainer.precision == "bf16-mixed", name
    assert {config.data.resolution for config in configs.values()} == {256}
    assert configs["innovation"].model.grad_checkpoint  # its CPU experiment turns it off at 32²
    for size in ("cpu", "gpu"):  # the decoder's FID: N >= 2,000 a side
        experiment, settings = STAGES["decoder"].run_at(size)
        decoder = compose_config([f"experiment={experiment}", *settings])
        assert min(decoder.data.num_test, decoder.model.quality.num_samples) >= 2000, size
        experiment, settings = STAGES["reader"].run_at(size)
        reader = compose_config([f"experiment={experiment}", *settings])
        counts = ("resolution", "num_train", "num_val", "num_test")  # the decoder's designs, at its scale
        assert [reader.data[key] for key in counts] == [decoder.data[key] for key in counts], size


@pytest.mark.slow
def test_gpu_size_chains_end_to_end_on_the_cpu_trainer(tmp_path):
    """Everything but the device: the GPU stages' configs (the six-level decoder, the fine-tune built as it
    from the hand-off, innovation with checkpointed steps) run at the tests' 32²."""
    on_cpu = [
        "trainer=cpu",
        "trainer.precision=32-true",
        "data.num_workers=0",
        "data.persistent_workers=false",
    ]
    pipeline(tmp_path, "--size", "gpu", "--run-name", "t", overrides=on_cpu)
    record = json.loads((tmp_path / "logs" / "design_pipeline" / "t.json").read_text())
    assert list(record) == list(STAGES) and np.isfinite(record["finetune"]["test/fid_ratio"])
    decoder = OmegaConf.load(stage_run(tmp_path, "design_decoder_gpu") / "config.yaml").model
    finetune = OmegaConf.load(stage_run(tmp_path, "design_finetune") / "config.yaml").model
    assert decoder.net.channels == 64 and finetune.net == decoder.net  # not design_finetune's own net
    assert finetune.meta_tokens == decoder.meta_tokens and finetune.noise_scheduler == decoder.noise_scheduler


def test_the_fine_tune_is_handed_the_architecture_of_the_decoder_it_starts_from(tmp_path):
    stages = write_stages(tmp_path)  # a decoder of another net than design_finetune's
    settings = [
        "experiment=design_finetune", f"data.resolution={RESOLUTION}", "model.eval_designs=4",
        *(f"model.{key}={path}" for key, path in stages.items()),
    ]  # fmt: skip

    def set_up(overrides):
        module = hydra.utils.instantiate(compose_config([*settings, *overrides]).model)
        module.trainer = quiet_trainer(tmp_path)
        module.setup("fit")
        return module

    with pytest.raises(UserError, match="prediction type .* must match"):  # the first of its differences
        set_up([])
    module = set_up(design_pipeline.architecture_overrides(stages["decoder_checkpoint"]))
    assert module.net.channels == DECODER_CONFIG["net"]["channels"]


@pytest.mark.parametrize(
    "value", [3, -1.5e-05, True, None, "models.nets.UNet", "it's 1:2", "7", [1, 2, 4], [], {"a": [0.5, "x"]}]
)
def test_override_values_read_back_through_hydra(value):
    override = OverridesParser.create().parse_override(f"key={design_pipeline.override_value(value)}")
    assert override.value() == value
