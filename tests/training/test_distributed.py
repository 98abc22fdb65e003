"""Real DDP on CPU: Lightning's 2-process launcher, torchrun and ddp_spawn each write ONE run directory."""

import csv
import io
import pickle
import sys
import threading
from multiprocessing.reduction import ForkingPickler

import hydra
import pytest
from omegaconf import OmegaConf, open_dict

from callbacks.heartbeat import Heartbeat
from tests.helpers import TINY, compose_config, read_summary, run_cli, run_dirs
from training.instantiate import instantiate_collection
from training.toolkit.checkpoints import AtomicCheckpointIO, checkpoint_metadata

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="gloo multi-process tests run on Linux CI")
RUN = ["experiment=cnn_digits", *TINY, "model.lr_schedule=null"]


def _one_finished_run(root):
    (run_dir,) = run_dirs(root, "cnn_digits")
    summary = read_summary(run_dir)
    assert summary["status"] == "finished" and summary["world_size"] == 2
    assert (run_dir / "heartbeat" / "rank_0.alive").exists() and (
        run_dir / "heartbeat" / "rank_1.alive"
    ).exists()
    return run_dir, summary


@pytest.fixture(scope="module")
def ddp_cpu_root(tmp_path_factory):
    """One `trainer=ddp_cpu` run (~25 s), checked below and the reference for ddp_spawn."""
    root = tmp_path_factory.mktemp("ddp_cpu")
    run_cli(root, *RUN, "trainer=ddp_cpu")
    return root


def test_ddp_cpu_trains_two_processes_and_logs_once(ddp_cpu_root):
    run_dir, summary = _one_finished_run(ddp_cpu_root)
    header, *rows = (run_dir / "metrics.csv").read_text().splitlines()
    steps = [row.split(",")[header.split(",").index("step")] for row in rows if row]
    assert len(steps) == len(set(zip(steps, rows, strict=True)))  # no duplicated rows from rank 1
    assert not list(run_dir.parent.parent.glob("runs/*/.hydra/config.yaml"))[1:]


def test_torchrun_two_processes_one_run_directory(tmp_path):
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29531",
        "-m",
    ]
    run_cli(tmp_path, *RUN, "trainer=torchrun", launcher=launcher)
    _one_finished_run(tmp_path)


def test_ddp_spawn_writes_what_ddp_cpu_writes(tmp_path, ddp_cpu_root):
    # ~45 s (two spawned processes import torch and Lightning afresh). What notebook and macOS users pick.
    run_cli(tmp_path, *RUN, "trainer.strategy=ddp_spawn", "trainer.devices=2", "trainer.accelerator=cpu")
    spawn_dir, spawn = _one_finished_run(tmp_path)
    ddp_dir, ddp = _one_finished_run(ddp_cpu_root)
    assert spawn["metrics"] == pytest.approx(ddp["metrics"], rel=1e-6)
    assert set(spawn["metrics"]) >= {"val/acc", "test/acc", "train/loss"}
    for fact in ("global_step", "epochs", "best_score", "params"):
        assert spawn[fact] == ddp[fact], fact
    assert spawn["performance"]["steps"] == ddp["performance"]["steps"] > 0
    spawn_rows, ddp_rows = (list(csv.DictReader((d / "metrics.csv").open())) for d in (spawn_dir, ddp_dir))
    assert [r["step"] for r in spawn_rows] == [r["step"] for r in ddp_rows]
    assert (spawn_dir / "rank0.log").exists() and (spawn_dir / "rank1.log").exists()


def test_multirun_of_ddp_jobs_goes_on_after_a_failed_one(tmp_path):
    # ~35 s. Job 0 (ddp_spawn) runs out of memory in one of its ranks (injected); job 1 (Lightning's ddp
    # launcher, which starts rank 1 by re-running the command: here the one job, not the whole sweep) trains.
    run_cli(
        tmp_path,
        "--multirun",
        "experiment=cnn_digits",
        "debug=fdr",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp_spawn,ddp",
        "+callbacks.fail._target_=tests.training.test_sweeps.FailFirstJob",
        f"+callbacks.fail.marker={tmp_path / 'failed_once'}",
    )
    (sweep,) = (tmp_path / "logs" / "cnn_digits" / "multiruns").iterdir()
    failed, finished = read_summary(sweep / "0"), read_summary(sweep / "1")
    assert failed["status"] == "failed" and "OutOfMemoryError" in failed["error"], failed
    assert finished["status"] == "finished" and finished["world_size"] == 2
    assert (sweep / "1" / "rank1.log").exists() and not list(sweep.glob("[2-9]"))
    rows = list(csv.DictReader((sweep / "multirun_summary.csv").open()))
    assert [row["status"] for row in rows] == ["failed", "finished"]


def test_ddp_fork_user_mistake_is_one_paragraph(tmp_path):
    # ~10 s (fork: the ranks import nothing anew). They find no CIFAR-10 files (offline); the launching
    # process exits 2 with their message, as a single process would.
    spawn = ["trainer.strategy=ddp_fork", "trainer.devices=2", "trainer.accelerator=cpu"]
    result = run_cli(tmp_path, "experiment=cifar10_resnet20", "debug=fdr", *spawn, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "data.download=true" in output, output[-3000:]
    assert "Traceback" not in output


def test_what_a_spawn_launcher_pickles_pickles(tmp_path):
    """Lightning's own spawn launcher (a notebook's `Trainer(strategy="ddp_spawn")` with our parts)
    pickles the callbacks, loggers, checkpoint plugin, model and datamodule: all must pickle (~3 s)."""
    cfg = compose_config(["experiment=cnn_digits", f"paths.output_dir={tmp_path}", "logger=csv"])
    with open_dict(cfg):
        del cfg["hydra"]
    heartbeat = Heartbeat(every_n_steps=1, stall_seconds=60)
    heartbeat._thread = threading.Thread(target=heartbeat._watch, daemon=True)  # a live watchdog
    heartbeat._thread.start()
    parts = {
        "callbacks": [*instantiate_collection(cfg.callbacks, "callbacks"), heartbeat],
        "loggers": instantiate_collection(cfg.logger, "logger"),
        "plugin": AtomicCheckpointIO(checkpoint_metadata(OmegaConf.to_container(cfg, resolve=True))),
        "model": hydra.utils.instantiate(cfg.model),
        "datamodule": hydra.utils.instantiate(cfg.data),
    }
    try:
        for name, part in parts.items():
            try:
                ForkingPickler(io.BytesIO(), 2).dump(part)  # what multiprocessing's spawn does
            except Exception as err:
                pytest.fail(f"{name} does not pickle: {err}")
        copy = pickle.loads(pickle.dumps(heartbeat))
    finally:
        heartbeat._stop_watchdog()
    assert copy._thread is None and not copy._stop.is_set() and copy.every_n_steps == 1
