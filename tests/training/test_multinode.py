"""Two torchrun agents on this machine as two nodes (`--nnodes=2`, c10d rendezvous on 127.0.0.1), as a
two-node SLURM or cloud job runs: one run directory and one logger run, the same weights on both nodes at
the end, and after one node's agent is killed mid-run, relaunching both continues the run from its newest
checkpoint (as a scheduler relaunches a job whose node failed)."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from pytorch_lightning.callbacks import Callback

from tests.helpers import REPO, cli_env, read_summary

RUN = [
    "experiment=cnn_digits",
    "trainer=torchrun",
    "trainer.accelerator=cpu",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "trainer.num_sanity_val_steps=0",
    "callbacks.model_summary=null",
    "callbacks.latest_checkpoint.every_n_train_steps=3",
    "test_after_fit=false",
    "run_name=two_nodes",
    "resume=auto",
    "torch_threads=1",
    "+callbacks.final_weights._target_=tests.training.test_multinode.FinalWeights",
    "+callbacks.throttle._target_=tests.throttle.Throttle",
    "+callbacks.throttle.seconds_per_batch=0.3",
]


class FinalWeights(Callback):
    """Each rank writes its final weights, so the test can compare the nodes."""

    def on_fit_end(self, trainer, pl_module) -> None:
        torch.save(
            pl_module.state_dict(), Path(trainer.default_root_dir) / f"weights_rank{trainer.global_rank}.pt"
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _agents(root: Path, rendezvous: str) -> list[subprocess.Popen]:
    port = _free_port()
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes=2",
                f"--node_rank={node}",
                "--nproc_per_node=1",
                "--rdzv_backend=c10d",
                f"--rdzv_endpoint=127.0.0.1:{port}",
                f"--rdzv_id={rendezvous}",
                "--max_restarts=0",
                "-m",
                "training.run",
                *RUN,
            ],  # fmt: skip
            cwd=REPO,
            env={**cli_env(root), "OMP_NUM_THREADS": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # the agent and its worker form one group: killed together, as a node
        )
        for node in (0, 1)
    ]


def _finish(agents: list[subprocess.Popen], timeout: float = 240) -> list[str]:
    outputs = []
    for agent in agents:
        try:
            outputs.append(agent.communicate(timeout=timeout)[0])
        except subprocess.TimeoutExpired:
            os.killpg(agent.pid, signal.SIGKILL)
            outputs.append(agent.communicate()[0])
            pytest.fail(f"a node's agent did not finish in {timeout}s:\n{outputs[-1][-3000:]}")
    return outputs


@pytest.mark.slow
def test_two_nodes_share_one_run_and_resume_after_one_node_dies(tmp_path):
    # ~90 s on 2 cores: two launches of two agents, each starting a worker that imports torch and Lightning.
    run_dir = tmp_path / "logs" / "cnn_digits" / "runs" / "two_nodes"
    agents = _agents(tmp_path, "first")
    deadline = time.time() + 180
    while not list((run_dir / "checkpoints").glob("step*.ckpt.sha256.json")):
        assert all(agent.poll() is None for agent in agents), agents[0].communicate()[0][-3000:]
        assert time.time() < deadline, "no checkpoint within 180 s"
        time.sleep(0.1)
    os.killpg(agents[1].pid, signal.SIGKILL)  # node 1 dies: its agent and its worker
    agents[1].communicate()
    try:  # node 0's worker waits for its lost peer; the scheduler ends the job (SLURM: --kill-on-bad-exit)
        agents[0].communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(agents[0].pid, signal.SIGKILL)
        agents[0].communicate()
    assert read_summary(run_dir)["status"] != "finished"

    outputs = _finish(_agents(tmp_path, "second"))
    assert all("Traceback" not in out for out in outputs), outputs[0][-3000:] + outputs[1][-3000:]
    (only,) = (tmp_path / "logs" / "cnn_digits" / "runs").iterdir()  # one run directory for both nodes
    summary = read_summary(run_dir)
    assert summary["status"] == "finished" and summary["world_size"] == 2, summary
    assert summary["attempts"] == 2 and summary["resumed_from"], summary
    assert list(run_dir.rglob("metrics.csv")) == [run_dir / "metrics.csv"]  # one logger run, rank 0's
    weights = [torch.load(run_dir / f"weights_rank{rank}.pt", weights_only=True) for rank in (0, 1)]
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key
