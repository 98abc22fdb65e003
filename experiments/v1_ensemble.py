"""Test the mean prediction of several trained v1 runs: an ensemble over seeds, scored like one model.

Each argument that is not a Hydra override names a member: a checkpoint file, or a finished run's folder
(its best checkpoint). Every member is rebuilt from the config stored in its own checkpoint, so members
may differ in architecture, and must be trained on the same sessions and units (checked with the
checkpoints' v1 records). The first member's data config, under this command's overrides, gives the test
data. Loading never runs code from a file (`training.toolkit.checkpoints.load_checkpoint_file`).

    python experiments/v1_ensemble.py logs/v1_multidataset/runs/t1_s0 logs/v1_multidataset/runs/t1_s1 \\
        logs/v1_multidataset/runs/t1_s2 torch_threads=2
    python experiments/v1_ensemble.py A.ckpt B.ckpt trainer=gpu --name t1_seeds

Prints each member's own test fraction of oracle (from its run's summary.json, when it has one) and the
mean prediction's metrics, and writes them with the test pictures to `logs/v1_ensemble/<name>/`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import hydra
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from models.v1.checkpoint_record import check_record, record_of  # noqa: E402
from models.v1.module import MultiDatasetModel  # noqa: E402
from models.v1.nets.ensemble import MeanPrediction  # noqa: E402
from training.checkpoint_config import config_from_checkpoint, experiment_of_checkpoint  # noqa: E402
from training.migrate import compose_target_config  # noqa: E402
from training.named_run import log_dir  # noqa: E402
from training.plugins import load_plugins  # noqa: E402
from training.run_state import Run  # noqa: E402
from training.toolkit.checkpoints import load_checkpoint_file  # noqa: E402
from training.toolkit.errors import UserError, cli  # noqa: E402

SHOWN = (
    "test/fraction_of_oracle",
    "test/fraction_of_oracle_median",
    "test/fraction_of_oracle/simple",
    "test/fraction_of_oracle/complex",
    "test/fraction_of_oracle/other",
    "test/fraction_of_achievable",
    "test/bps",
    "test/cc_median",
    "test/feve_median",
)


def member_checkpoint(item: str) -> Path:
    """A checkpoint file as given, or the best checkpoint of the finished run in folder `item`."""
    path = Path(item)
    if path.is_file():
        return path
    if path.is_dir():
        checkpoint = Run(path).result_checkpoint()
        if checkpoint:
            return Path(checkpoint)
        raise UserError(
            f"{path} holds no finished run with a checkpoint (its summary.json names none): give the "
            "run folder of a finished run, or a .ckpt file."
        )
    raise UserError(f"{item} is neither a checkpoint file nor a run folder: give .ckpt files or run folders.")


def load_member(checkpoint: Path, overrides: list[str], output_dir: Path):
    """(config, model with the checkpoint's weights) of one member, as `task=test ckpt_path=…` builds them,
    composed with the run's own experiment so that overrides of its keys (model.compile_model) apply."""
    composed = compose_target_config(
        [*experiment_of_checkpoint(checkpoint), "task=test", f"ckpt_path={checkpoint}", *overrides],
        output_dir,
    )
    cfg = config_from_checkpoint(composed, overrides)
    load_plugins(cfg, stored_in=str(checkpoint))
    model = hydra.utils.instantiate(cfg.model)
    if not isinstance(model, MultiDatasetModel):
        raise UserError(
            f"{checkpoint} is a {type(model).__name__} checkpoint; the ensemble takes v1 runs only."
        )
    stored = load_checkpoint_file(checkpoint)
    check_record(model, stored.get("v1"))
    model.load_state_dict(stored["state_dict"], strict=True)
    return cfg, model


def own_score(checkpoint: Path) -> float | None:
    """The member's own test fraction of oracle from the summary.json of the run that wrote it."""
    summary = checkpoint.parent.parent / "summary.json"
    if not summary.is_file():
        return None
    return json.loads(summary.read_text()).get("metrics", {}).get("test/fraction_of_oracle")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--name", default=None, help="output folder under logs/v1_ensemble (default: from the first)"
    )
    parser.add_argument(
        "items", nargs="+", help="checkpoints or run folders, then Hydra overrides (key=value)"
    )
    args = parser.parse_intermixed_args(argv)  # options anywhere among the items
    args.overrides = [item for item in args.items if "=" in item]
    args.members = [item for item in args.items if "=" not in item]
    if not args.members:
        parser.error("give at least one checkpoint or run folder")
    return args


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    # One test pass: compiling costs more than it saves, and nothing trains, so nothing is frozen (a frozen
    # core is looked up on the host's net, which the mean prediction replaces).
    overrides = [*args.overrides, "model.compile_model=false", "model.freeze_vision=false"]
    checkpoints = [member_checkpoint(item) for item in args.members]
    name = args.name or f"{checkpoints[0].parent.parent.name}_x{len(checkpoints)}"
    output_dir = log_dir() / "v1_ensemble" / name
    cfg, host = load_member(checkpoints[0], overrides, output_dir)
    members = [host.net]
    for checkpoint in checkpoints[1:]:
        _, model = load_member(checkpoint, overrides, output_dir)
        check_record(host, record_of(model))  # the same sessions and units as the first member
        members.append(model.net)
    if cfg.get("torch_threads"):
        torch.set_num_threads(int(cfg.torch_threads))
    host.net = MeanPrediction(members)
    datamodule = hydra.utils.instantiate(cfg.data)
    trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=[], logger=False, enable_checkpointing=False, default_root_dir=str(output_dir)
    )
    metrics = {k: float(v) for k, v in trainer.test(host, datamodule=datamodule)[0].items()}
    report = {
        "members": [{"checkpoint": str(c), "own_fraction_of_oracle": own_score(c)} for c in checkpoints]
    }
    report["metrics"] = metrics
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    for member in report["members"]:
        score = member["own_fraction_of_oracle"]
        print(
            f"member {member['checkpoint']}: test fraction of oracle {'–' if score is None else f'{score:.4f}'}"
        )
    print(f"mean prediction of {len(checkpoints)} members ({output_dir / 'metrics.json'}):")
    for key in SHOWN:
        if key in metrics:
            print(f"  {key} {metrics[key]:.4f}")
    return metrics


if __name__ == "__main__":
    cli(main)
