"""MultiDatasetModel on tiny simulated sessions: metrics, checkpoint records, transfer, legacy layouts."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import hydra
import pytest
import torch
from pytorch_lightning.callbacks import Callback

import datamodules.v1.resolvers  # noqa: F401  (v1.dataset_fact, as plugins.v1_data registers it in a run)
import models.v1.legacy  # noqa: F401  (registers the seed formats, as plugins.v1_migrations does in a run)
from datamodules.v1 import MultiDatasetDM
from datamodules.v1.simulator import simulate_tier
from models.v1.checkpoint_record import SessionMismatchError, check_record, record_of
from models.v1.module import MultiDatasetModel
from models.v1.readout_init import EnergySTA
from tests.helpers import compose_config, quiet_trainer, read_summary, run_dirs, run_main
from training.toolkit.errors import UserError

# An old checkout's shipped dataset configs, which old checkpoints' stored configs name.
STALE = "/home/someone/VisionCore/conf/v1_datasets"


@pytest.fixture(scope="module")
def tiny_t1(tmp_path_factory) -> tuple[Path, Path]:
    """(dataset-config folder, data dir) of the T1 tier at size tiny (simulated once per module)."""
    root = tmp_path_factory.mktemp("v1_tiny")
    configs = simulate_tier("T1", "tiny", 0, data_dir=root / "data", configs_dir=root / "configs")
    return Path(configs), root / "data"


def _config(tiny_t1, *overrides: str):
    configs, data_dir = tiny_t1
    return compose_config(
        [
            "experiment=v1_multidataset",
            f"data.dataset_configs_path={configs}",
            f"data.data_dir={data_dir}",
            *overrides,
        ]
    )


def _parts(tiny_t1, *overrides: str) -> tuple[MultiDatasetModel, MultiDatasetDM]:
    cfg = _config(tiny_t1, "data.batch_size=8", "data.eval_batch_size=64", *overrides)
    return hydra.utils.instantiate(cfg.model), hydra.utils.instantiate(cfg.data)


def _fit(model, datamodule, root: Path, **trainer_kwargs) -> None:
    options = dict(max_steps=6, limit_val_batches=2, num_sanity_val_steps=0) | trainer_kwargs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quiet_trainer(root, **options).fit(model, datamodule=datamodule)


def test_fit_then_test_reports_bits_per_spike_and_oracle_fractions(tiny_t1, tmp_path):
    model, datamodule = _parts(tiny_t1)
    _fit(model, datamodule, tmp_path)
    trainer = quiet_trainer(tmp_path, limit_test_batches=3)
    (metrics,) = trainer.test(model, datamodule=datamodule)
    sessions = datamodule.session_names
    assert {f"test/bps/{name}" for name in sessions} <= set(metrics)
    for key in ("test/bps", "test/bps_median", "test/fraction_of_oracle", "test/oracle_bps", "test/loss"):
        assert math.isfinite(metrics[key]), key
    # The oracle knows the true rates: it beats a 6-step model, whose fraction is below 1.
    assert metrics["test/oracle_bps"] > metrics["test/bps"] and metrics["test/fraction_of_oracle"] < 1.0
    assert {"test/fraction_of_oracle/simple", "test/fraction_of_oracle/complex"} <= set(metrics)
    assert not any("achievable" in key for key in metrics)  # T1 has no hidden gain: the oracle is achievable
    assert -1.0 <= metrics["test/cc_median"] <= 1.0 and math.isfinite(metrics["test/feve_median"])  # repeats
    assert 0.0 <= metrics["test/rf_center_error_deg_median"] < 2.0
    for picture in ("bps_vs_oracle", "receptive_fields", "core_filters"):
        assert (tmp_path / "images" / f"{picture}.png").stat().st_size > 1000


def test_a_hidden_gain_adds_the_fraction_of_the_achievable_rates(tmp_path):
    root = tmp_path / "t2"
    configs = simulate_tier("T2", "tiny", 0, data_dir=root / "data", configs_dir=root / "configs")
    model, datamodule = _parts((Path(configs), root / "data"))
    _fit(model, datamodule, tmp_path)
    (metrics,) = quiet_trainer(tmp_path, limit_test_batches=3).test(model, datamodule=datamodule)
    for key in ("fraction_of_achievable", "fraction_of_achievable_median", "achievable_bps"):
        assert math.isfinite(metrics[f"test/{key}"]), key
    assert {"test/fraction_of_achievable/simple", "test/fraction_of_achievable/complex"} <= set(metrics)
    # The hidden gain is information only the oracle has: the achievable rates carry less.
    assert metrics["test/achievable_information"] < metrics["test/oracle_information"]


def test_readouts_start_at_mean_rates_and_energy_sta_positions(tiny_t1, tmp_path):
    model, datamodule = _parts(tiny_t1, "model.optimizer.lr=0.0")
    _fit(model, datamodule, tmp_path, max_steps=1, limit_val_batches=0)  # setup() initialises the readouts
    for name in datamodule.session_names:
        sta = EnergySTA()  # on the gaborium windows (white noise localises an STA best)
        for batch in datamodule.training_windows(name, stim_types=["gaborium"]):
            assert batch["robs"].shape[0] > 0
            sta.update(batch["stim"], batch["robs"], batch["dfs"])
        assert torch.equal(model.net.readouts[name].mu.detach(), sta.positions())
    name = datamodule.session_names[0]
    session = datamodule.sessions[name]
    batch = {name: {"stim": torch.zeros(3, 8, *session.frame_shape), "eyepos": torch.zeros(3, 8, 2)}}
    torch.nn.init.zeros_(model.net.readouts[name].features)
    model.eval()
    expected = datamodule.mean_rates(name).clamp_min(1e-3)
    assert torch.allclose(model(batch)[name][0], expected, rtol=1e-3, atol=1e-4)


def test_checkpoint_record_names_sessions_and_units_and_is_strict(tiny_t1):
    model, _ = _parts(tiny_t1)
    record = record_of(model)
    assert [entry["name"] for entry in record["sessions"]] == model.session_names
    first = record["sessions"][0]
    assert first["unit_ids"] == list(model.configs.sessions[0].unit_ids)
    assert first["readout_shapes"]["features"][0] == len(first["unit_ids"])
    assert record["dataset_config_hash"] == model.configs.hash and record["simulator_version"]
    check_record(model, record)  # its own record loads
    smaller, _ = _parts(tiny_t1, "data.max_datasets=1")
    with pytest.raises(SessionMismatchError, match="other sessions or units"):
        check_record(smaller, record)
    with pytest.raises(SessionMismatchError, match="no v1 session record"):
        check_record(model, None)


def _pretrained_checkpoint(tiny_t1, root: Path) -> tuple[MultiDatasetModel, Path]:
    """A briefly trained model and its checkpoint, the source of a transfer run's core (and readout prior)."""
    pretrained, datamodule = _parts(tiny_t1)
    _fit(pretrained, datamodule, root / "pretrain")
    checkpoint = root / "pretrained.ckpt"
    torch.save(
        {"state_dict": pretrained.state_dict(), "visioncore": {}, "v1": record_of(pretrained)}, checkpoint
    )
    return pretrained, checkpoint


def test_freeze_vision_keeps_the_pretrained_core_fixed_and_in_eval_mode(tiny_t1, tmp_path):
    pretrained, checkpoint = _pretrained_checkpoint(tiny_t1, tmp_path)

    model, datamodule = _parts(
        tiny_t1, f"model.pretrained_checkpoint={checkpoint}", "model.freeze_vision=true"
    )
    readout_before = {k: v.clone() for k, v in model.net.readouts.state_dict().items()}
    modes = []

    class RecordModes(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            modes.append((pl_module.net.core.training, pl_module.net.readouts.training))

    _fit(model, datamodule, tmp_path / "transfer", callbacks=[RecordModes()])
    for key, value in pretrained.net.core.state_dict().items():
        assert torch.equal(model.net.core.state_dict()[key], value), key
    assert all(not p.requires_grad for p in model.net.core.parameters())
    assert modes and all(core is False and readouts is True for core, readouts in modes)
    changed = [k for k, v in model.net.readouts.state_dict().items() if not torch.equal(v, readout_before[k])]
    assert changed, "the new readouts should train"


def test_a_pretrained_core_built_otherwise_names_the_overrides_to_match(tiny_t1, tmp_path):
    _, checkpoint = _pretrained_checkpoint(tiny_t1, tmp_path)
    model, datamodule = _parts(
        tiny_t1, f"model.pretrained_checkpoint={checkpoint}", "model.net.core.output_steps=1"
    )
    with pytest.raises(UserError, match=r"frontend.weight.*model.net.core.\* overrides .*output_steps"):
        _fit(model, datamodule, tmp_path / "transfer")


def test_a_readout_prior_starts_new_units_at_the_pretrained_mean_weighed_by_the_training_bins(
    tiny_t1, tmp_path
):
    pretrained, checkpoint = _pretrained_checkpoint(tiny_t1, tmp_path)
    units = torch.cat([readout.features for readout in pretrained.net.readouts.values()]).detach()

    model, datamodule = _parts(
        tiny_t1,
        f"model.pretrained_checkpoint={checkpoint}",
        "model.freeze_vision=true",
        "model.regularization.readout_prior=0.5",
    )
    starts = []

    class RecordStart(Callback):
        def on_fit_start(self, trainer, pl_module):
            starts.extend(readout.features.detach().clone() for readout in pl_module.net.readouts.values())

    _fit(model, datamodule, tmp_path / "transfer", callbacks=[RecordStart()])
    torch.testing.assert_close(model.readout_prior.mean, units.mean(0))
    for start in starts:
        torch.testing.assert_close(start, units.mean(0).expand_as(start))
    entries = sum(
        datamodule.training_bins(name) * model.configs.session(name).num_units for name in model.session_names
    )
    assert entries > 0 and model.prior_weight == pytest.approx(0.5 / (2 * entries))
    features = torch.cat([readout.features for readout in model.net.readouts.values()])
    without = model._regularization() - model.prior_weight * model.readout_prior.penalty(features)
    model.regularization["readout_prior"] = 0.0
    torch.testing.assert_close(model._regularization(), without)
    assert not any("readout_prior" in key for key in model.state_dict())


def test_a_readout_prior_without_a_pretrained_checkpoint_is_an_error(tiny_t1):
    with pytest.raises(Exception, match="readout_prior"):
        _parts(tiny_t1, "model.regularization.readout_prior=1e-3")


def test_freeze_vision_without_a_pretrained_checkpoint_is_an_error(tiny_t1):
    with pytest.raises(Exception, match="pretrained_checkpoint"):
        _parts(tiny_t1, "model.freeze_vision=true")


def test_old_configs_take_the_session_order_of_a_simulated_dataset_or_a_stale_path():
    """Today's configs name a simulated dataset (no folder); old ones the former conf/v1_datasets folder."""
    from datamodules.v1.dataset_configs import load_dataset_configs

    expected = load_dataset_configs(dataset="t1_tiny").session_names
    assert load_dataset_configs(None, dataset="t1_tiny").session_names == expected
    assert load_dataset_configs(f"{STALE}/t1_tiny").session_names == expected


def test_a_step_without_some_sessions_still_gives_every_parameter_a_gradient(tiny_t1):
    """data.sessions_per_step: absent sessions get an explicit zero gradient, so DDP needs no unused-parameter search."""
    model, datamodule = _parts(
        tiny_t1, "model.regularization.readout_l1=0"
    )  # the penalty touches all readouts
    datamodule.setup("fit")
    present, absent = datamodule.session_names
    batch = next(iter(datamodule.training_windows(present, batch_size=4)))
    loss = model.training_step({present: batch}, 0)
    loss.backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    assert all(torch.all(p.grad == 0) for p in model.net.readouts[absent].parameters())
    assert any(torch.any(p.grad != 0) for p in model.net.readouts[present].parameters())


def test_an_old_checkpoints_conf_v1_datasets_path_still_builds_model_and_data(tiny_t1):
    """Old checkpoints' stored configs name <checkout>/conf/v1_datasets/<name>, which is no longer shipped:
    the model and the datamodule read it as the simulated dataset (the same sessions, units and hash)."""
    model, datamodule = _parts(tiny_t1)
    old_model, old_data = _parts(tiny_t1, f"data.dataset_configs_path={STALE}/t1_tiny")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even a changed-hash warning
        check_record(old_model, record_of(model))
    assert old_model.configs.dataset == old_data.configs.dataset == "t1_tiny"
    assert old_data.session_names == datamodule.session_names
    old_data.prepare_data()  # the sessions are where the simulator put them: nothing to simulate
    old_data.setup("test")


def test_task_test_on_an_old_checkpoint_whose_configs_path_is_gone(tmp_path):
    """`task=test ckpt_path=OLD` with no other overrides, the checkpoint's stored config naming the former
    conf/v1_datasets folder (and no `dataset` key, which old configs lack)."""
    run_main(tmp_path, "experiment=v1_single", "size=tiny", "trainer.max_steps=2", "test_after_fit=false")
    (run_dir,) = run_dirs(tmp_path, "v1_single")
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    config = checkpoint["visioncore"]["config"]
    for part in ("data", "model"):
        assert config[part].pop("dataset") == "t0_tiny" and config[part]["dataset_configs_path"] is None
        config[part]["dataset_configs_path"] = f"{STALE}/t0_tiny"
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    run_main(tmp_path, "task=test", f"ckpt_path={old}")
    (tested,) = (tmp_path / "logs" / "eval").glob("test_*")
    summary = read_summary(tested)
    assert summary["status"] == "finished" and math.isfinite(summary["metrics"]["test/bps"])


SMALL_SEED_NET = [
    "model=v1_visioncore",
    "model.net.config.frontend.params.kernel_size=4",
    "model.net.config.convnet.params.channels=[6,8]",
    "model.net.config.convnet.params.stem_config.out_channels=3",
    "model.net.config.recurrent.params.hidden_dim=5",
    "model.net.config.adapter.params.grid_size=31",
]


def test_the_seeds_network_trains_and_tests_on_visioncore_sessions(tiny_t1, tmp_path):
    """model=v1_visioncore (the Yates-Lab network, its front end shortened to the tiny sessions' 8 lags):
    new readouts by the data's session names, a fit, and the test metrics of every session."""
    model, datamodule = _parts(tiny_t1, *SMALL_SEED_NET)
    assert set(model.net.readouts) == set(datamodule.session_names)
    before = {k: v.clone() for k, v in model.net.core.state_dict().items()}
    _fit(model, datamodule, tmp_path)
    assert any(not torch.equal(v, before[k]) for k, v in model.net.core.state_dict().items())
    (metrics,) = quiet_trainer(tmp_path, limit_test_batches=2).test(model, datamodule=datamodule)
    assert all(math.isfinite(metrics[f"test/bps/{name}"]) for name in datamodule.session_names)


def test_a_migrated_seed_checkpoint_starts_a_frozen_core_transfer_on_visioncore_sessions(tiny_t1, tmp_path):
    """A Yates-Lab VisionCore file (HEAD layout, a front end short enough for the tiny sessions' 8 lags),
    migrated, then `model.pretrained_checkpoint` of a frozen-core fit on VisionCore's sessions: the seed's
    core is kept exactly, new readouts learn, and every session gets test metrics."""
    import yaml

    from tests.models.v1.test_visioncore_migration import _head, _seed_network
    from tests.models.v1.test_visioncore_net import seed_config
    from training.migrate import migrate

    config = seed_config(channels=(6, 8), stem=3, kernel=4, hidden=5, grid=31, modulator=False)
    seed = _seed_network(config)
    old, new = tmp_path / "seed.ckpt", tmp_path / "migrated.ckpt"
    torch.save(_head(seed, tmp_path, model_config_dict=config), old)
    configs, data_dir = tiny_t1
    migrate(
        old,
        new,
        ["experiment=v1_multidataset", f"data.dataset_configs_path={configs}", f"data.data_dir={data_dir}"],
    )
    seed_yaml = tmp_path / "seed_model.yaml"
    seed_yaml.write_text(yaml.safe_dump(config))
    model, datamodule = _parts(
        tiny_t1,
        "model=v1_visioncore",
        f"model.net.config={seed_yaml}",
        f"model.pretrained_checkpoint={new}",
        "model.freeze_vision=true",
    )
    _fit(model, datamodule, tmp_path / "fit")
    expected = {k.removeprefix("core."): v for k, v in seed.state_dict().items() if k.startswith("core.")}
    for key, value in model.net.core.state_dict().items():
        assert torch.equal(value, expected[key]), key
    (metrics,) = quiet_trainer(tmp_path, limit_test_batches=2).test(model, datamodule=datamodule)
    assert all(math.isfinite(metrics[f"test/bps/{name}"]) for name in datamodule.session_names)
