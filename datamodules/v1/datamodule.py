"""`MultiDatasetDM`: the v1 LightningDataModule — many recording sessions, stratified mixed batches.

A batch is `{session: {"stim", "robs", "dfs", "eyepos", ["behavior"], eval: ["rates", "achievable"],
"trial", "frame"}}` in the dataset configs' session order (see datamodules/v1/windows.py). Stimuli
leave the loader as uint8 and are normalised on the device in `on_after_batch_transfer`.

- train: a `ResumableLoader` over a `StratifiedBatchSampler`: every step holds `batch_size` windows of
  every session (or of `sessions_per_step` sessions drawn alike on all ranks), uniform or
  contrast-weighted; shards itself across ranks and resumes mid-epoch.
- val/test: one loader each; step k holds the next `eval_batch_size` windows of every session that has
  some left (`EvalBatchSampler`), so a batch may hold a subset of the sessions. Ranks hold disjoint
  slices padded with dfs == 0 windows, so masked metrics do not depend on the number of processes.
- predict: a plain DataLoader over the test windows (no padding; batches may straddle two sessions).
- resident: the GPU-resident path (datamodules/v1/resident.py): the loader yields index batches and
  the windows are gathered on the device.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info
from torch.utils.data import DataLoader

from datamodules.loading import ResumableLoader
from datamodules.v1.dataset_configs import DatasetConfigs, SessionConfig, load_dataset_configs
from datamodules.v1.resident import IndexDataset, ResidentSessions, is_index_batch
from datamodules.v1.samplers import (
    ContrastWeightedSampler,
    EvalBatchSampler,
    SessionSampler,
    ShuffledDraws,
    StratifiedBatchSampler,
)
from datamodules.v1.session import META_FILE, Session
from datamodules.v1.windows import SessionData, WindowDataset, group_collate
from models.v1.schema import TRUTH_UNITS
from training.toolkit.errors import UserError

SAMPLER_KEYS = ("contrast_weighted", "power", "contrast_threshold")
SPLITS = ("train", "val", "test")
TRAIN_TARGETS = ("spikes", "rates")
RESIDENT_MEMORY_SHARE = 0.5  # resident="auto" uses at most this share of the free device memory


class SessionDataNotFoundError(UserError):
    """A session folder named by the dataset configs is missing and cannot be simulated."""


class MultiDatasetDM(pl.LightningDataModule):
    """Loaders over the sessions of one dataset-config folder (`dataset_configs_path`), or of the simulated
    dataset `dataset` (e.g. `t1_small`; its configs computed from the tier definitions) when that is null.
    A path to the repository's former `conf/v1_datasets/<name>` (old checkpoints) reads as `dataset=<name>`.

    Session folders are `data_dir / parent.yaml's data_root / <session>.yaml's path`. `batch_size` is
    windows per session per step; `steps_per_epoch` null = enough for the largest session once.
    `sampler`: {contrast_weighted, power, contrast_threshold} (RMS contrast, std/255 of the current
    frame). `train_fraction` keeps the first share of each session's training trials (transfer
    experiments). `resident`: auto (on when the trainer is on a GPU and the data fit), true, false.
    `cones`: null (parent.yaml's transforms.cones), false, true or parameters of `cones_frames`.
    `seed`: null = the run's seed (PL_GLOBAL_SEED). The samplers run in the main process, so curriculum
    stages reach them even with persistent workers.
    """

    def __init__(
        self,
        dataset_configs_path: str | None = None,
        data_dir: str = "data",
        max_datasets: int | None = None,
        sessions: Sequence[str] | None = None,
        stim_types: Sequence[str] | None = None,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        steps_per_epoch: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        sampler: Mapping[str, Any] | None = None,
        sessions_per_step: int | None = None,
        train_fraction: float = 1.0,
        resident: bool | str = "auto",
        cones: bool | Mapping[str, Any] | None = None,
        seed: int | None = None,
        dataset: str | None = None,
        train_targets: str = "spikes",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.sampler_config = {"contrast_weighted": False, "power": 1.0, "contrast_threshold": 0.0}
        unknown = sorted(set(sampler or {}) - set(SAMPLER_KEYS))
        if unknown:
            raise UserError(f"data.sampler has unknown keys {unknown}; allowed: {list(SAMPLER_KEYS)}.")
        self.sampler_config.update(sampler or {})
        if not 0.0 < train_fraction <= 1.0:
            raise UserError(
                f"data.train_fraction={train_fraction}: must be in (0, 1] (share of training trials)."
            )
        if str(resident).lower() not in ("auto", "true", "false"):
            raise UserError(f"data.resident={resident!r}: use auto, true or false.")
        self.resident_mode = str(resident).lower()
        if train_targets not in TRAIN_TARGETS:
            raise UserError(
                f"data.train_targets={train_targets!r}: use spikes (the recordings) or rates (simulated "
                "sessions' true rates: the noise-free ceiling of a model)."
            )
        self.seed = seed if seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))
        self.configs: DatasetConfigs = load_dataset_configs(
            dataset_configs_path, max_datasets, sessions, dataset=dataset, data_dir=data_dir
        )
        self.stim_types = self._check_stim_types(stim_types)
        self.data: dict[str, SessionData] = {}
        self.samples: dict[str, dict[str, np.ndarray]] = {}  # split -> session -> sample frames t
        self._mean_rates: dict[str, torch.Tensor] = {}
        self._resident: ResidentSessions | None = None
        self._resident_decision: bool | None = None
        self._train_batch_sampler: StratifiedBatchSampler | None = None

    # ------------------------------------------------------------------------- facts after setup
    @property
    def session_names(self) -> list[str]:
        return self.configs.session_names

    @property
    def sessions(self) -> dict[str, Session]:
        return {name: data.session for name, data in self.data.items()}

    def has_truth(self, name: str) -> bool:
        return self.data[name].has_truth

    def _check_stim_types(self, stim_types: Sequence[str] | None) -> list[str]:
        """The stimulus types to read: parent.yaml's, or the subset named by `data.stim_types`."""
        if stim_types is None:
            return self.configs.types
        unknown = [kind for kind in stim_types if kind not in self.configs.types]
        if unknown or not stim_types:
            raise UserError(
                f"data.stim_types={list(stim_types)}: choose a non-empty subset of the types of "
                f"{self.configs.where} (its parent.yaml): {self.configs.types}."
            )
        return list(stim_types)

    def cell_types(self) -> dict[str, list[str]]:
        """Per simulated session, each unit's true cell type (config order); real sessions are left out."""
        types = {}
        for name, data in self.data.items():
            if data.has_truth and data.session.has_truth_item(TRUTH_UNITS):
                type_of = {
                    int(unit["id"]): str(unit["cell_type"]) for unit in data.session.truth(TRUTH_UNITS)
                }
                types[name] = [type_of[int(unit)] for unit in self.configs.session(name).unit_ids]
        return types

    def behavior_dim(self, name: str) -> int:
        return self.data[name].behavior_dim

    def stim_stats(self, name: str) -> tuple[float, float]:
        return self.data[name].stim_stats

    def mean_rates(self, name: str) -> torch.Tensor:
        """Mean spikes per bin of each unit (config order) over the valid entries of the training windows."""
        if name not in self._mean_rates:
            rates = self.data[name].mean_rates(self.samples["train"][name])
            self._mean_rates[name] = torch.as_tensor(rates, dtype=torch.float32)
        return self._mean_rates[name]

    def training_bins(self, name: str) -> int:
        """The session's training windows: each holds one bin of every unit."""
        self._require_setup()
        return len(self.samples["train"][name])

    def training_windows(
        self, name: str, batch_size: int = 2048, stim_types: Sequence[str] | None = None
    ) -> Iterator[dict[str, torch.Tensor]]:
        """One session's training windows in time order (only those of `stim_types`, if given), normalised
        on the host: for data-driven initialisation (e.g. readout positions), not for training itself."""
        self._require_setup()
        data, frames = self.data[name], self.samples["train"][name]
        if stim_types is not None:
            blocks = self.sessions[name].meta["stim_types"]
            spans = [(blocks[kind]["start"], blocks[kind]["stop"]) for kind in stim_types if kind in blocks]
            frames = (
                frames[np.any([(frames >= a) & (frames < b) for a, b in spans], axis=0)]
                if spans
                else frames[:0]
            )
        mean, std = data.stim_stats
        for start in range(0, len(frames), batch_size):
            item = data.fetch(frames[start : start + batch_size], evaluation=False)
            batch = {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in item.items()}
            batch["stim"] = batch["stim"].to(torch.float32).sub_(mean).div_(std)
            yield batch

    # -------------------------------------------------------------------------------- locations
    @property
    def data_root(self) -> Path:
        """Where session folders are: parent.yaml's `data_root`, relative to `data_dir` unless absolute."""
        root = Path(str(self.configs.parent.get("data_root") or "."))
        return root if root.is_absolute() else Path(self.hparams.data_dir) / root

    def _folder(self, config: SessionConfig) -> Path:
        return config.folder(self.data_root)

    def _missing(self) -> list[Path]:
        return [self._folder(c) for c in self.configs.sessions if not (self._folder(c) / META_FILE).is_file()]

    # ---------------------------------------------------------------------------- Lightning hooks
    def prepare_data(self) -> None:
        """Simulate missing sessions when parent.yaml has a `simulate` block (local rank 0 only)."""
        missing = self._missing()
        if not missing:
            return
        parent_file = self.configs.path / "parent.yaml"
        simulate = self.configs.parent.get("simulate")
        if not simulate:
            raise SessionDataNotFoundError(
                f"{len(missing)} session folder(s) of {parent_file} are missing, e.g. {missing[0]}. Put the "
                f"session folders under {self.data_root} (data.data_dir + parent.yaml's data_root), fix the "
                "sessions' `path`, or add `simulate: {tier, size, seed}` to parent.yaml to simulate them."
            )
        from datamodules.v1.simulator.simulate import simulate_tier  # heavy; only when data is missing

        rank_zero_info(
            f"Simulating {simulate} into {self.hparams.data_dir} ({len(missing)} sessions missing)."
        )
        simulate_tier(
            tier=simulate["tier"],
            size=simulate["size"],
            seed=simulate["seed"],
            data_dir=self.hparams.data_dir,
        )
        still = self._missing()
        if still:
            raise SessionDataNotFoundError(
                f"Simulating {simulate} (from {parent_file}) did not write {still[0]} (and {len(still) - 1} more); "
                "the dataset configs and the simulator disagree on where sessions go."
            )

    def setup(self, stage: str | None = None) -> None:
        """Open every session, check it against its configs and index its windows (once); fitting also
        needs training windows in every session (testing a checkpoint on fixrsvp, which has none, does not)."""
        if not self.data:
            self._index_sessions()
        if stage in (None, "fit"):
            self._require_training_windows()

    def _split_labels(self) -> dict[str, str]:
        return {**{s: s for s in SPLITS}, **dict(self.configs.parent.get("split") or {})}

    def _where(self, name: str) -> str:
        return f"{self.configs.path / (name + '.yaml')} (session {name})"

    def _require_training_windows(self) -> None:
        for name, windows in self.samples["train"].items():
            if len(windows) == 0:
                raise UserError(
                    f"{self._where(name)} has no training windows: no '{self._split_labels()['train']}' trial "
                    f"of types {self.stim_types} is at least lags={self.configs.lags} frames long."
                )

    def _index_sessions(self) -> None:
        missing = self._missing()
        if missing:
            raise SessionDataNotFoundError(
                f"Session folder {missing[0]} is missing ({len(missing)} in all); run prepare_data() first "
                "(the Trainer does) or put the sessions there."
            )
        cones = self._cones_params()
        split_labels = self._split_labels()
        self.samples = {split: {} for split in SPLITS}
        for config in self.configs.sessions:
            session = Session(self._folder(config))
            where = self._where(config.name)
            if session.frame_shape != self.configs.frame_shape:
                raise UserError(
                    f"{where}: frames are {list(session.frame_shape)} but parent.yaml says frame_shape "
                    f"{list(self.configs.frame_shape)}; fix parent.yaml or re-create the session."
                )
            data = SessionData(
                session,
                config.unit_ids,
                self.stim_types,
                self.configs.lags,
                cones,
                where,
                self.hparams.train_targets,
            )
            declared = self.configs.parent.get("behavior")
            if declared is not None and data.behavior_dim != len(declared):
                raise UserError(
                    f"{where}: the session has {data.behavior_dim} behaviour channels but parent.yaml's "
                    f"behavior lists {len(declared)} ({declared}); fix parent.yaml or re-create the session."
                )
            self.data[config.name] = data
            for split in SPLITS:
                fraction = self.hparams.train_fraction if split == "train" else 1.0
                self.samples[split][config.name] = data.windows(split_labels[split], fraction)

    def _cones_params(self) -> dict[str, Any] | None:
        cones = self.hparams.cones
        if cones is None:
            cones = (self.configs.parent.get("transforms") or {}).get("cones", False)
        if cones is False or cones is None:
            return None
        return {} if cones is True else dict(cones)

    def set_curriculum_stage(self, name: str, params: Mapping[str, Any]) -> None:
        """Apply a curriculum stage's `contrast_threshold` / `power` (other keys belong to the model)."""
        changes = {key: params[key] for key in ("contrast_threshold", "power") if key in params}
        if not changes:
            return
        if not self.sampler_config["contrast_weighted"]:
            raise UserError(
                f"Curriculum stage '{name}' sets {sorted(changes)} but data.sampler.contrast_weighted is false; "
                "set data.sampler.contrast_weighted=true or drop those stage params."
            )
        if changes.get("power", 0) < 0:
            raise UserError(f"Curriculum stage '{name}': power={changes['power']} must be >= 0.")
        self.sampler_config.update(changes)
        if self._train_batch_sampler is not None:
            for sampler in self._train_batch_sampler.samplers:
                sampler.contrast_threshold = float(self.sampler_config["contrast_threshold"])
                sampler.power = float(self.sampler_config["power"])
                sampler.probabilities()  # a threshold that excludes a whole session fails here, clearly

    # -------------------------------------------------------------------------------- loaders
    def _require_setup(self) -> None:
        if not self.data:
            raise RuntimeError("MultiDatasetDM: call setup() before asking for a dataloader.")

    def use_resident(self) -> bool:
        """resident=true/false, or "auto": resident when the trainer is on a GPU and the data fit.

        Decided once (the first loader), so train and eval loaders always take the same path.
        """
        if self._resident_decision is None:
            self._resident_decision = self._decide_resident()
        return self._resident_decision

    def _decide_resident(self) -> bool:
        if self.resident_mode != "auto":
            return self.resident_mode == "true"
        trainer = self.trainer
        device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        if device.type != "cuda":
            return False
        needed = ResidentSessions(list(self.data.values()))
        free, _ = torch.cuda.mem_get_info(device)
        if needed.nbytes > RESIDENT_MEMORY_SHARE * free:
            rank_zero_info(
                f"data.resident=auto: the sessions need {needed.nbytes / 2**30:.1f} GiB, more than "
                f"{RESIDENT_MEMORY_SHARE:.0%} of the free GPU memory; loading from host memory instead."
            )
            return False
        self._resident = needed
        return True

    def _dataset(self, split: str, evaluation: bool) -> WindowDataset:
        sessions = list(self.data.values())
        samples = [self.samples[split][name] for name in self.data]
        if self.use_resident():
            if self._resident is None:
                self._resident = ResidentSessions(sessions)
            return IndexDataset(sessions, samples, evaluation)
        return WindowDataset(sessions, samples, evaluation)

    def _loader_options(self, dataset: WindowDataset) -> dict[str, Any]:
        if isinstance(dataset, IndexDataset):  # index batches: workers and pinning would only cost
            return {"num_workers": 0, "pin_memory": False, "persistent_workers": False}
        workers = self.hparams.num_workers
        return {
            "num_workers": workers,
            "pin_memory": self.hparams.pin_memory,
            "persistent_workers": self.hparams.persistent_workers and workers > 0,
        }

    def _session_samplers(self) -> list[SessionSampler]:
        config = self.sampler_config
        samplers: list[SessionSampler] = []
        for stream, (name, data) in enumerate(self.data.items()):
            t = self.samples["train"][name]
            if config["contrast_weighted"]:
                sampler = ContrastWeightedSampler(
                    data.rms_contrast()[t],
                    power=config["power"],
                    contrast_threshold=config["contrast_threshold"],
                    seed=self.seed,
                    stream=stream,
                    name=name,
                )
                sampler.probabilities()  # a threshold that excludes every window fails now, not mid-run
                samplers.append(sampler)
            else:
                samplers.append(ShuffledDraws(len(t), seed=self.seed, stream=stream))
        return samplers

    def train_dataloader(self) -> ResumableLoader:
        self._require_setup()
        dataset = self._dataset("train", evaluation=False)
        self._train_batch_sampler = StratifiedBatchSampler(
            self._session_samplers(),
            dataset.sizes,
            self.hparams.batch_size,
            steps_per_epoch=self.hparams.steps_per_epoch,
            sessions_per_step=self.hparams.sessions_per_step,
            seed=self.seed,
        )
        return ResumableLoader(
            dataset,
            batch_sampler=self._train_batch_sampler,
            seed=self.seed,
            collate_fn=group_collate,
            **self._loader_options(dataset),
        )

    def _eval_loader(self, split: str) -> DataLoader | list:
        self._require_setup()
        dataset = self._dataset(split, evaluation=True)
        if len(dataset) == 0:
            return []  # no windows of this split: Lightning skips the loop
        batch_size = self.hparams.eval_batch_size or self.hparams.batch_size
        return DataLoader(
            dataset,
            batch_sampler=EvalBatchSampler(dataset.sizes, batch_size),
            collate_fn=group_collate,
            **self._loader_options(dataset),
        )

    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader | list:
        return self._eval_loader("test")

    def predict_dataloader(self) -> DataLoader:
        # A plain loader: Lightning re-creates predict loaders to track batch indices.
        self._require_setup()
        dataset = self._dataset("test", evaluation=True)
        return DataLoader(
            dataset,
            batch_size=self.hparams.eval_batch_size or self.hparams.batch_size,
            shuffle=False,
            collate_fn=group_collate,
            **self._loader_options(dataset),
        )

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """On the device: gather resident windows, then stim uint8 -> float32 (x - mean) / std per session."""
        if is_index_batch(batch):
            batch = self._resident.gather_batch(batch)  # type: ignore[union-attr]
        for name, item in batch.items():
            mean, std = self.data[name].stim_stats
            item["stim"] = item["stim"].to(torch.float32).sub_(mean).div_(std)  # in place: one allocation
        return batch
