"""The stage graph (`models.design.stages`): every hand-off names an earlier stage and a key its experiment's
config has; a stage that needs the earlier runs names every unset key and the pipeline as the fix."""

import pytest
from omegaconf import OmegaConf

from models.design.stages import PIPELINE, STAGES
from tests.helpers import REPO, compose_config
from training.toolkit.errors import UserError


def test_each_stage_reads_only_earlier_stages_checkpoints():
    order = list(STAGES)
    assert order == ["encoder", "abstractor", "reader", "decoder", "finetune", "innovation"]
    for position, stage in enumerate(STAGES.values()):
        assert stage.name == order[position]
        assert all(order.index(source) < position for source in stage.needs.values()), stage.name
    assert (REPO / PIPELINE).is_file()


@pytest.mark.parametrize("name", list(STAGES))
def test_each_hand_off_key_is_an_unset_key_of_the_stage_experiment(name):
    stage = STAGES[name]
    config = compose_config([f"experiment={stage.experiment}"])
    for key in stage.needs:
        assert OmegaConf.select(config, key, default="absent") is None, key  # there, waiting for a path


def test_key_finds_the_config_key_of_a_checkpoint_argument():
    assert STAGES["innovation"].key("decoder_checkpoint") == "model.decoder_checkpoint"
    assert STAGES["decoder"].key("abstractor_checkpoint") == "model.quality.abstractor_checkpoint"
    with pytest.raises(KeyError):
        STAGES["encoder"].key("decoder_checkpoint")


def test_unset_stage_checkpoints_are_named_with_the_pipeline_as_the_fix():
    given = {"decoder_checkpoint": "d.ckpt", "encoder_checkpoint": None, "abstractor_checkpoint": ""}
    with pytest.raises(UserError) as error:
        STAGES["finetune"].require_checkpoints(given)
    message = str(error.value)
    assert "The design fine-tune needs" in message
    assert "model.encoder_checkpoint, model.abstractor_checkpoint are not set" in message
    assert PIPELINE in message and "model.decoder_checkpoint" not in message
    assert "model.encoder_checkpoint=logs/design_encoder/runs/<run>/checkpoints/best-*.ckpt" in message


def test_the_innovation_loop_samples_with_the_fine_tuned_decoder():
    with pytest.raises(UserError, match=r"model\.decoder_checkpoint is not set.*logs/design_finetune/"):
        STAGES["innovation"].require_checkpoints({"encoder_checkpoint": "e", "abstractor_checkpoint": "a"})
    STAGES["innovation"].require_checkpoints(
        {"decoder_checkpoint": "d", "encoder_checkpoint": "e", "abstractor_checkpoint": "a"}
    )
