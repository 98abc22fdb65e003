"""The grow experiment: pool mechanics, the RGBA MSE, the target, and `experiment=ukiyoe_nca_grow` end to end."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.ukiyoe.target_datamodule import load_target
from models.ukiyoe.grow_pool import (
    SamplePool,
    circle_masks,
    damage_masks,
    half_plane_mask,
    prepare_batch,
    rgba_mse,
    seed_state,
)
from models.ukiyoe.nets.nca import ALPHA
from tests.helpers import TINY, read_summary, run_dirs, run_main
from training.toolkit.errors import UserError


def test_seed_has_one_alive_cell_with_no_colour():
    seed = seed_state(8, 5)
    assert seed.sum() == 8 - 3  # alpha + 4 hidden channels at 1 in one cell
    assert seed[ALPHA, 2, 2] == 1 and seed[1:4, 2, 2].eq(0).all()


def test_rgba_mse_on_a_hand_built_case():
    target = torch.zeros(1, 4, 2, 2)
    rgba = torch.zeros(2, 4, 2, 2)
    rgba[0, 0, 0, 0] = 1.0  # one of 16 values off by 1
    rgba[1] = 0.5  # every value off by 0.5
    torch.testing.assert_close(rgba_mse(rgba, target), torch.tensor([1 / 16, 0.25]))


def test_prepare_batch_reseeds_the_worst_and_damages_the_best_inside_a_disc():
    size = 16
    seed = seed_state(6, size)
    states = torch.rand(4, 6, size, size) + 0.5
    losses = torch.tensor([0.3, 0.9, 0.1, 0.5])  # worst: 1, best: 2
    out = prepare_batch(states, losses, seed, damage_count=1, generator=torch.Generator().manual_seed(0))
    disc = circle_masks(4, size, generator=torch.Generator().manual_seed(0))[2, 0]
    assert disc.any() and not disc.all()
    assert torch.equal(out[1], seed)
    assert (out[2][:, disc] == 0).all()
    assert torch.equal(out[2][:, ~disc], states[2][:, ~disc])
    for kept in (0, 3):
        assert torch.equal(out[kept], states[kept])


def test_damage_masks_are_discs_or_halves_through_the_centre_in_any_orientation():
    size = 16
    assert torch.equal(
        damage_masks(8, size, 0.0, generator=torch.Generator().manual_seed(3)),
        circle_masks(8, size, generator=torch.Generator().manual_seed(3)),
    )
    halves = damage_masks(64, size, 1.0, generator=torch.Generator().manual_seed(3))
    coverage = halves.float().mean(dim=(1, 2, 3))
    assert ((coverage > 0.4) & (coverage < 0.6)).all()  # a line through the centre of a 16-px grid
    assert (halves | halves.flip(-1, -2)).all()  # the cell opposite an uncut cell is cut: a half, not a disc
    assert len({tuple(mask.flatten().tolist()) for mask in halves}) > 8  # many orientations
    mixed = damage_masks(400, size, 0.5, generator=torch.Generator().manual_seed(4))
    share = ((mixed | mixed.flip(-1, -2)).flatten(1).all(dim=1)).float().mean().item()
    assert 0.4 < share < 0.65  # discs larger than the canvas's centre cell pair are rare


def test_pool_samples_distinct_indices_and_writes_back():
    pool = SamplePool(10, seed_state(5, 4))
    indices, states = pool.sample(6, generator=torch.Generator().manual_seed(0))
    assert len(set(indices.tolist())) == 6 and torch.equal(states, pool.states[indices])
    pool.update(indices, torch.full_like(states, 2.0))
    assert (pool.states[indices] == 2).all()
    untouched = torch.ones(10, dtype=torch.bool)
    untouched[indices] = False
    assert torch.equal(pool.states[untouched], seed_state(5, 4).expand(4, -1, -1, -1))
    assert "states" in pool.state_dict() and "seed" not in pool.state_dict()


def test_half_plane_mask_cuts_half_the_canvas():
    mask = half_plane_mask(8)
    assert mask.float().mean() == 0.5 and mask[..., 4:].all()


def test_target_is_premultiplied_rgba_centred_on_the_canvas(tmp_path):
    target = load_target(resolution=32, canvas=40, index=0)
    assert target.shape == (4, 40, 40) and target.min() >= 0 and target.max() <= 1
    assert (target[3, 4:36, 4:36] == 1).all() and target[3].sum() == 32 * 32
    image = np.zeros((20, 10, 4), dtype=np.uint8)
    image[..., 0], image[..., 3] = 255, 128  # half-transparent red, twice as tall as wide
    Image.fromarray(image).save(tmp_path / "user.png")
    user = load_target(resolution=8, canvas=12, target_image=str(tmp_path / "user.png"))
    assert user[3].gt(0).sum() == 8 * 4  # fitted into 8 px, aspect kept
    torch.testing.assert_close(user[0].max(), torch.tensor(128 / 255))  # premultiplied by alpha
    with pytest.raises(UserError, match="data.target_image"):
        load_target(8, 12, target_image=str(tmp_path / "missing.png"))


def test_experiment_runs_with_fast_dev_run(tmp_path):
    run_main(
        tmp_path,
        "experiment=ukiyoe_nca_grow",
        "debug=fdr",
        *TINY,
        "data.resolution=8",
        "data.canvas=12",
        "model.train_steps=[4,6]",
        "model.eval_steps=4",
    )
    (run_dir,) = run_dirs(tmp_path, "ukiyoe_nca_grow")
    summary = read_summary(run_dir)
    assert summary["status"] == "finished"
    for name in ("grow_mse", "persist_mse", "damaged_mse", "regrow_mse", "regrow_persist_mse"):
        assert math.isfinite(summary["metrics"][f"test/{name}"]), name
    # the untrained NCA leaves the seed as it is: it is one cell away from the target everywhere
    assert summary["metrics"]["test/grow_mse"] > 0.1
    assert (run_dir / "images" / "ukiyoe_nca_grow.png").is_file()


def test_a_damage_share_outside_zero_one_names_the_key():
    from models.ukiyoe.grow_module import GrowModel
    from models.ukiyoe.nets.nca import IntegratedNCA

    nca = IntegratedNCA(state_channels=8, hidden=8, w_dim=0, num_colors=0)
    with pytest.raises(UserError, match=r"model.half_plane_share=1.5"):
        GrowModel(nca, torch.optim.Adam, canvas=8, pool_size=8, batch_size=4, half_plane_share=1.5)


def test_validation_replays_the_test_sequence_on_its_own_seed():
    """Validation reads growth, persistence and regrowth like the test, but on other stochastic updates, so
    the checkpoint it picks is not fitted to the test's draw."""
    from models.ukiyoe.grow_module import GrowModel
    from models.ukiyoe.nets.nca import IntegratedNCA

    torch.manual_seed(0)
    nca = IntegratedNCA(state_channels=8, hidden=8, w_dim=0, num_colors=0)
    torch.nn.init.normal_(nca.update.weight, std=0.1)  # a rule that changes the state ...
    torch.nn.init.constant_(nca.update.bias, 0.05)  # ... and keeps its cells alive
    model = GrowModel(nca, torch.optim.Adam, canvas=8, pool_size=8, batch_size=4, eval_steps=4)
    test, again, val = model._trajectory(0, frames=2), model._trajectory(0), model._trajectory(1)
    assert list(test)[:2] == ["step 2", "step 4"]
    for name in ("grow_mse", "persist_mse", "damaged_mse", "regrow_mse", "regrow_persist_mse"):
        torch.testing.assert_close(test[name], again[name])  # one seed, one sequence, whatever the chunks
    assert not torch.equal(test["regrow_mse"], val["regrow_mse"])
    assert test["damaged_mse"][..., 4:].eq(0).all()  # the right half cut away
    logged = {}
    model.log_dict = lambda values, **kwargs: logged.update(values)
    model.validation_step(torch.zeros(1, 4, 8, 8), 0)
    assert set(logged) == {
        f"val/{n}" for n in ("grow_mse", "persist_mse", "damaged_mse", "regrow_mse", "regrow_persist_mse")
    }
