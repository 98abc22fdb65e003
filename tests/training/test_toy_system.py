"""A fifth system is added with files only, in the slice every system has (a plain network apart from its
LightningModule, a DataModule, a plugin module that registers what its configs need, three configs), outside
this repository, found through Hydra's search path and run end to end by the unchanged runner."""

import sys
import textwrap

from tests.helpers import read_summary, run_dirs, run_main

FILES = {
    "toy_system/__init__.py": "",
    "toy_system/nets.py": """
        import torch

        class ToyNet(torch.nn.Sequential):
            def __init__(self, width: int):
                super().__init__(torch.nn.Linear(4, width), torch.nn.ReLU(), torch.nn.Linear(width, 2))
    """,
    "toy_system/resolvers.py": """
        from omegaconf import OmegaConf

        # A per-system fact the model config reads while it resolves: registered by the system, not the runner.
        OmegaConf.register_new_resolver("toy.width", lambda: 8, replace=True)
    """,
    "toy_system/datamodule.py": '''
        import pytorch_lightning as pl
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        class ToyDM(pl.LightningDataModule):
            """Two Gaussian blobs in 4 dimensions (takes the loader options debug=fdr sets, like every DM)."""

            def __init__(self, batch_size: int = 16, num_samples: int = 128, num_workers: int = 0, persistent_workers: bool = False):
                super().__init__()
                generator = torch.Generator().manual_seed(0)
                labels = torch.arange(num_samples) % 2
                points = torch.randn(num_samples, 4, generator=generator) + 2.0 * labels[:, None]
                self.data, self.batch_size = TensorDataset(points, labels), batch_size

            def train_dataloader(self):
                return DataLoader(self.data, batch_size=self.batch_size, shuffle=True)

            def val_dataloader(self):
                return DataLoader(self.data, batch_size=self.batch_size)

            test_dataloader = val_dataloader
    ''',
    "toy_system/module.py": """
        import pytorch_lightning as pl
        import torch
        import torch.nn.functional as F

        from toy_system.nets import ToyNet

        class ToyModel(pl.LightningModule):
            def __init__(self, width: int, lr: float = 0.1):
                super().__init__()
                self.net, self.lr = ToyNet(width), lr

            def _step(self, batch, stage):
                points, labels = batch
                logits = self.net(points)
                loss = F.cross_entropy(logits, labels)
                self.log(f"{stage}/loss", loss)
                self.log(f"{stage}/acc", (logits.argmax(1) == labels).float().mean())
                return loss

            def training_step(self, batch, batch_idx):
                return self._step(batch, "train")

            def validation_step(self, batch, batch_idx):
                self._step(batch, "val")

            def test_step(self, batch, batch_idx):
                self._step(batch, "test")

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=self.lr)
    """,
    "conf/data/toy.yaml": "_target_: toy_system.datamodule.ToyDM\nbatch_size: 16\n",
    "conf/model/toy.yaml": "_target_: toy_system.module.ToyModel\nwidth: ${toy.width:}\nlr: 0.1\n",
    "conf/experiment/toy.yaml": """
        # @package _global_
        defaults:
          - override /data: toy
          - override /model: toy
        name: toy
        plugins:
          toy: toy_system.resolvers
        trainer:
          max_epochs: 3
    """,
}


def test_a_new_system_runs_from_its_own_files(tmp_path, monkeypatch):
    plugin = tmp_path / "plugin"
    for name, text in FILES.items():
        path = plugin / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    monkeypatch.syspath_prepend(str(plugin))
    run_main(
        tmp_path,
        f"hydra.searchpath=[file://{plugin / 'conf'}]",
        "experiment=toy",
        "trainer.enable_progress_bar=false",
        "callbacks.model_summary=null",
    )
    (run_dir,) = run_dirs(tmp_path, "toy")
    summary = read_summary(run_dir)
    assert summary["status"] == "finished" and summary["metrics"]["test/acc"] > 0.8
    assert summary["params"] == (4 * 8 + 8) + (8 * 2 + 2)  # the width its plugin's resolver gave
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and (run_dir / "metrics.csv").is_file()
    # Lightning's fast_dev_run through the runner's debug option: one batch of each loop.
    run_main(tmp_path, f"hydra.searchpath=[file://{plugin / 'conf'}]", "experiment=toy", "debug=fdr")
    for name in [name for name in sys.modules if name.split(".")[0] == "toy_system"]:
        monkeypatch.delitem(sys.modules, name)
