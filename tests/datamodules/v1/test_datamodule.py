"""MultiDatasetDM: facts after setup, stratified train batches, device-side normalisation, resume,
eval sharding with padding, the resident path, workers, missing data and a short Lightning fit."""

import sys
import types

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from datamodules import loading
from datamodules.v1 import MultiDatasetDM
from datamodules.v1.datamodule import SessionDataNotFoundError
from tests.datamodules.v1.synthetic_sessions import LAGS, write_tiny_dataset
from tests.helpers import quiet_trainer
from training.toolkit.errors import UserError

ALPHA_TRAIN = np.r_[2:10, 22:30, 66:70]
ALPHA_COLUMNS = np.array([2, 0, 4])


def _dm(tiny_dataset, **options) -> MultiDatasetDM:
    options = {"batch_size": 4, "seed": 11, **options}
    dm = MultiDatasetDM(str(tiny_dataset.configs), str(tiny_dataset.data_dir), **options)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _epoch(loader, epoch: int) -> list:
    loader.batch_sampler.set_epoch(epoch)
    return list(loader)


def _transferred(dm, batches):
    return [dm.on_after_batch_transfer(batch, 0) for batch in batches]


def _assert_same_batches(first, second) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert list(a) == list(b)
        for name in a:
            assert sorted(a[name]) == sorted(b[name])
            for key in a[name]:
                assert a[name][key].dtype == b[name][key].dtype, (name, key)
                assert torch.equal(a[name][key], b[name][key]), (name, key)


def test_facts_after_setup(tiny_dataset):
    dm = _dm(tiny_dataset)
    assert dm.session_names == ["alpha", "beta"] and list(dm.sessions) == ["alpha", "beta"]
    assert dm.has_truth("alpha") and not dm.has_truth("beta")
    assert dm.behavior_dim("alpha") == 2 and dm.behavior_dim("beta") == 0
    assert dm.cell_types() == {"alpha": ["other", "simple", "complex"]}  # unit ids 12, 10, 14
    rows, cols = ALPHA_TRAIN[:, None], ALPHA_COLUMNS[None]
    robs, dfs = (rows * (cols + 1)) % 4, ((rows + cols) % 9 != 0)
    expected = (robs * dfs).sum(0) / dfs.sum(0)  # spikes per bin over valid training entries
    rates = dm.mean_rates("alpha")
    assert rates.dtype == torch.float32 and rates.shape == (3,)
    np.testing.assert_allclose(rates.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(rates.numpy(), [13 / 9, 26 / 18, 26 / 17], rtol=1e-6)
    assert _dm(tiny_dataset, max_datasets=1).session_names == ["alpha"]


def test_a_stimulus_type_without_training_trials_can_be_tested_but_not_fitted(tiny_dataset):
    options = {"batch_size": 4, "seed": 11, "stim_types": ["gratings"]}  # beta shows no gratings
    dm = MultiDatasetDM(str(tiny_dataset.configs), str(tiny_dataset.data_dir), **options)
    dm.setup("test")
    assert len(dm.samples["test"]["alpha"]) == 8 and len(dm.samples["test"]["beta"]) == 0  # frames 72..79
    with pytest.raises(UserError, match=r"session beta\) has no training windows.*\['gratings'\]"):
        dm.setup("fit")


def test_train_fraction_keeps_the_first_training_trials(tiny_dataset):
    dm = _dm(tiny_dataset, train_fraction=0.5)  # alpha: 2 of its 4 training trials; beta: its only one
    assert dm.samples["train"]["alpha"].tolist() == [*range(2, 10), *range(22, 30)]
    assert len(dm.samples["train"]["beta"]) == 23 and len(dm.samples["val"]["alpha"]) == 8


def test_every_train_batch_holds_every_session_and_stim_stays_uint8_until_transfer(tiny_dataset):
    dm = _dm(tiny_dataset)
    loader = dm.train_dataloader()
    assert len(loader) == 6  # ceil(23 / 4): beta, the largest, once
    batches = _epoch(loader, 0)
    assert len(batches) == 6
    for batch in batches:
        assert list(batch) == ["alpha", "beta"]
        for name, item in batch.items():
            assert item["stim"].dtype == torch.uint8 and item["stim"].shape == (4, LAGS, 6, 8)
            assert item["robs"].shape == item["dfs"].shape == (4, 3) and item["eyepos"].shape == (4, LAGS, 2)
            assert ("behavior" in item) == (name == "alpha") and "rates" not in item
    raw = batches[0]["alpha"]["stim"].clone()
    out = dm.on_after_batch_transfer(batches[0], 0)
    mean, std = dm.stim_stats("alpha")
    stats = dm.sessions["alpha"].meta["stim_stats"]
    assert (mean, std) == (stats["mean"], stats["std"])
    assert out["alpha"]["stim"].dtype == torch.float32
    torch.testing.assert_close(out["alpha"]["stim"], (raw.float() - mean) / std)
    pixel = int(raw[0, -1, 0, 1])
    assert out["alpha"]["stim"][0, -1, 0, 1].item() == pytest.approx((pixel - mean) / std, rel=1e-6)
    assert len(_dm(tiny_dataset, steps_per_epoch=3).train_dataloader()) == 3


def test_train_loader_resumes_with_exactly_the_remaining_batches(tiny_dataset):
    full = _epoch(_dm(tiny_dataset).train_dataloader(), 1)
    interrupted = _dm(tiny_dataset).train_dataloader()
    interrupted.batch_sampler.set_epoch(1)
    iterator = iter(interrupted)
    seen = [next(iterator) for _ in range(2)]
    state = interrupted.state_dict()
    assert state["epoch"] == 1 and state["batches"] == 2

    resumed = _dm(tiny_dataset).train_dataloader()
    resumed.load_state_dict(state)
    _assert_same_batches(seen + _epoch(resumed, 1), full)


def test_curriculum_threshold_reaches_the_train_sampler(tiny_dataset):
    dm = _dm(tiny_dataset, sampler={"contrast_weighted": True, "power": 1.0, "contrast_threshold": 0.0})
    loader = dm.train_dataloader()
    dm.set_curriculum_stage("hard", {"contrast_threshold": 0.1, "lr": 1.0})  # lr belongs to the model
    batches = _epoch(loader, 0)
    frames = np.concatenate([batch["alpha"]["stim"][:, -1].numpy() for batch in batches])
    contrast = frames.reshape(len(frames), -1).std(axis=1) / 255
    assert contrast.min() >= 0.1
    with pytest.raises(UserError, match="contrast_weighted is false"):
        _dm(tiny_dataset).set_curriculum_stage("hard", {"contrast_threshold": 0.1})


def test_eval_sharding_over_two_ranks_covers_every_window_once_with_zero_dfs_padding(
    tiny_dataset, monkeypatch
):
    dm = _dm(tiny_dataset, eval_batch_size=3)
    single = {name: dm.samples["test"][name].tolist() for name in dm.session_names}
    frames = {name: [] for name in dm.session_names}
    valid_entries = 0.0
    for rank in (0, 1):
        monkeypatch.setattr(loading, "_rank_and_world", lambda rank=rank: (rank, 2))
        loader = dm.test_dataloader()
        assert len(loader) == 3  # alpha 16 -> 8 per rank, beta 13 -> 7: ceil(8 / 3)
        for batch in loader:
            for name, item in batch.items():
                padding = item["trial"] == -1
                assert (item["dfs"][padding] == 0).all()
                frames[name] += item["frame"][~padding].tolist()
                valid_entries += item["dfs"].sum().item()
    assert {name: sorted(f) for name, f in frames.items()} == single  # every window once
    monkeypatch.setattr(loading, "_rank_and_world", lambda: (0, 1))
    one_process = sum(item["dfs"].sum().item() for batch in dm.test_dataloader() for item in batch.values())
    assert valid_entries == one_process  # masked sums do not depend on the number of processes


def test_resident_path_yields_the_cpu_path_batches(tiny_dataset, monkeypatch):
    cpu, resident = _dm(tiny_dataset, resident=False), _dm(tiny_dataset, resident=True)
    index_batch = next(iter(resident.train_dataloader()))
    assert sorted(index_batch["alpha"]) == ["resident_t"] and index_batch["alpha"]["resident_t"].shape == (4,)
    for make in ("train_dataloader", "val_dataloader", "predict_dataloader"):
        loaders = [getattr(dm, make)() for dm in (cpu, resident)]
        if make == "train_dataloader":
            pairs = [_epoch(loader, 2) for loader in loaders]
        else:
            pairs = [list(loader) for loader in loaders]
        _assert_same_batches(_transferred(cpu, pairs[0]), _transferred(resident, pairs[1]))
    monkeypatch.setattr(loading, "_rank_and_world", lambda: (1, 2))  # the rank holding beta's padding
    pairs = [list(dm.test_dataloader()) for dm in (cpu, resident)]
    assert (pairs[0][-1]["beta"]["trial"] == -1).sum() == 1
    _assert_same_batches(_transferred(cpu, pairs[0]), _transferred(resident, pairs[1]))


def test_train_targets_rates_fit_the_true_rates_and_evaluate_on_spikes(tiny_dataset):
    cpu, resident = (
        _dm(tiny_dataset, max_datasets=1, train_targets="rates", resident=r) for r in (False, True)
    )
    data = cpu.data["alpha"]
    t = cpu.samples["train"]["alpha"][:5]
    truth, spikes = data.truth("rates")[t][:, ALPHA_COLUMNS], data.session.robs[t][:, ALPHA_COLUMNS]
    assert not np.array_equal(truth, spikes)
    np.testing.assert_array_equal(data.fetch(t, evaluation=False)["robs"], truth.astype(np.float32))
    np.testing.assert_array_equal(data.fetch(t, evaluation=True)["robs"], spikes.astype(np.float32))
    for make in ("train_dataloader", "val_dataloader"):  # the resident path reads the same targets
        loaders = [getattr(dm, make)() for dm in (cpu, resident)]
        pairs = [_epoch(loader, 0) if make == "train_dataloader" else list(loader) for loader in loaders]
        _assert_same_batches(_transferred(cpu, pairs[0]), _transferred(resident, pairs[1]))
    with pytest.raises(UserError, match=r"session beta.*train_targets=rates needs the true rates"):
        _dm(tiny_dataset, train_targets="rates")
    with pytest.raises(UserError, match="data.train_targets='counts'"):
        _dm(tiny_dataset, train_targets="counts")


def test_persistent_workers_give_the_same_batches_over_epochs(tiny_dataset):
    single = _dm(tiny_dataset).train_dataloader()
    loader = _dm(tiny_dataset, num_workers=1, persistent_workers=True).train_dataloader()
    assert loader.persistent_workers
    for epoch in (0, 1):
        _assert_same_batches(_epoch(loader, epoch), _epoch(single, epoch))


def test_missing_sessions_are_a_clear_error_or_simulated(tmp_path, monkeypatch):
    absent = write_tiny_dataset(tmp_path / "absent", write_sessions=False)
    with pytest.raises(SessionDataNotFoundError, match=r"missing, e\.g\. .*sessions/alpha.*simulate"):
        MultiDatasetDM(str(absent.configs), str(absent.data_dir)).prepare_data()

    calls = []

    def simulate_tier(tier, size, seed, data_dir):
        calls.append((tier, size, seed, data_dir))
        write_tiny_dataset(tmp_path / "simulated", simulate={"tier": tier, "size": size, "seed": seed})

    fake = types.ModuleType("datamodules.v1.simulator.simulate")
    fake.simulate_tier = simulate_tier
    monkeypatch.setitem(sys.modules, "datamodules.v1.simulator.simulate", fake)
    simulated = write_tiny_dataset(
        tmp_path / "simulated", simulate={"tier": "T1", "size": "tiny", "seed": 3}, write_sessions=False
    )
    dm = MultiDatasetDM(str(simulated.configs), str(simulated.data_dir))
    dm.prepare_data()
    assert calls == [("T1", "tiny", 3, str(simulated.data_dir))]
    dm.prepare_data()  # present now: not simulated again
    assert len(calls) == 1


def test_frame_shape_mismatch_is_a_clear_error(tiny_dataset, tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    for path in tiny_dataset.configs.iterdir():
        text = path.read_text()
        (folder / path.name).write_text(
            text.replace("- 6\n- 8", "- 8\n- 8") if path.name == "parent.yaml" else text
        )
    dm = MultiDatasetDM(str(folder), str(tiny_dataset.data_dir))
    with pytest.raises(UserError, match=r"frames are \[6, 8\] but parent.yaml says frame_shape \[8, 8\]"):
        dm.setup("fit")


class _Probe(pl.LightningModule):
    """Records what the steps receive; one parameter so the optimizer has something to do."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[tuple[str, torch.dtype, int]] = []

    def training_step(self, batch, batch_idx):
        self.seen += [("train", item["stim"].dtype, len(item["stim"])) for item in batch.values()]
        return (self.weight - 1) ** 2

    def validation_step(self, batch, batch_idx):
        self.seen += [("val", item["stim"].dtype, len(item["stim"])) for item in batch.values()]

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_fit_uses_our_batch_sampler_and_normalises_on_the_device(tiny_dataset, tmp_path):
    dm = MultiDatasetDM(str(tiny_dataset.configs), str(tiny_dataset.data_dir), batch_size=4, seed=0)
    probe = _Probe()
    trainer = quiet_trainer(
        tmp_path,
        limit_train_batches=2,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
    )
    trainer.fit(probe, datamodule=dm)
    assert trainer.train_dataloader.batch_sampler is dm._train_batch_sampler  # not re-wrapped by Lightning
    assert probe.seen.count(("train", torch.float32, 4)) == 4  # 2 steps x 2 sessions
    assert sum(kind == "val" for kind, _, _ in probe.seen) == 2 and all(
        d == torch.float32 for _, d, _ in probe.seen
    )


def test_cones_frames_replace_the_stimulus_and_its_statistics(tiny_dataset, monkeypatch):
    calls = []

    def cones_frames(session, kind, **params):
        calls.append((session.name, kind, params))
        return 255 - np.asarray(session.stim(kind))  # a stand-in "adaptation": the negative

    fake = types.ModuleType("datamodules.v1.cones")
    fake.cones_frames = cones_frames
    monkeypatch.setitem(sys.modules, "datamodules.v1.cones", fake)
    plain, cones = _dm(tiny_dataset), _dm(tiny_dataset, cones={"gain": 2.0})
    assert ("alpha", "gratings", {"gain": 2.0}) in calls and all(kind != "backimage" for _, kind, _ in calls)
    batches = [_epoch(dm.train_dataloader(), 0)[0] for dm in (plain, cones)]
    assert torch.equal(batches[1]["alpha"]["stim"], 255 - batches[0]["alpha"]["stim"])
    mean, std = cones.stim_stats("alpha")
    selected = np.concatenate([cones_frames(cones.sessions["alpha"], k) for k in ("gaborium", "gratings")])
    assert mean == pytest.approx(selected.mean()) and std == pytest.approx(selected.std())  # recomputed


def test_training_windows_cover_the_train_split_in_order_normalised(tiny_dataset):
    dm = _dm(tiny_dataset)
    batches = list(dm.training_windows("alpha", batch_size=5))
    assert sum(len(b["robs"]) for b in batches) == len(ALPHA_TRAIN)
    robs = torch.cat([b["robs"] for b in batches])
    rows, cols = ALPHA_TRAIN[:, None], ALPHA_COLUMNS[None]
    assert torch.equal(robs, torch.as_tensor((rows * (cols + 1)) % 4, dtype=torch.float32))
    stim = torch.cat([b["stim"] for b in batches])
    assert stim.dtype == torch.float32 and stim.shape == (len(ALPHA_TRAIN), LAGS, *stim.shape[2:])
    first = dm.data["alpha"].fetch(ALPHA_TRAIN[:1], evaluation=False)["stim"].astype(np.float32)
    mean, std = dm.stim_stats("alpha")
    assert torch.allclose(stim[:1], (torch.from_numpy(first) - mean) / std)
    blocks = dm.sessions["alpha"].meta["stim_types"]
    for kind, block in blocks.items():
        count = sum(len(b["robs"]) for b in dm.training_windows("alpha", stim_types=[kind]))
        assert count == ((block["start"] <= ALPHA_TRAIN) & (block["stop"] > ALPHA_TRAIN)).sum(), kind
