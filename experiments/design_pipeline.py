"""The design pipeline: encoder -> abstractor -> reader -> decoder -> finetune -> innovation, in order.

Each stage is one `python -m training.run experiment=design_<stage>` run named after the pipeline
(`logs/design_<stage>/runs/<run name>/`) and reads the best checkpoints of the stages before it (with the
settings that need them, `Stage.pipeline_settings`: the abstractor trains on the encoder's reading too). Run the
same command again after an interruption: finished stages are skipped, the unfinished one resumes from
its newest valid checkpoint (`resume=auto`), and the rest follow.

    python experiments/design_pipeline.py                         # every stage, CPU sizes
    python experiments/design_pipeline.py --size gpu              # the seed's 256² canvas on one GPU
    python experiments/design_pipeline.py --run-name try2 --stages encoder,abstractor
    python experiments/design_pipeline.py trainer.max_epochs=2    # overrides go to every stage
    python experiments/design_pipeline.py --set decoder:trainer.max_epochs=40 --set encoder:data.num_train=2000

A stage that starts from another's weights (the fine-tune from the decoder) is also handed that run's
architecture (`ARCHITECTURE_KEYS`, read from its checkpoint's run config), so its own config need not
repeat the decoder run's overrides at either size. Run dirs and the hand-off are printed;
`logs/design_pipeline/<run name>.json` records each stage's checkpoint and metrics (with `fid_features`,
the extractor of a stage's FID/KID).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from omegaconf import OmegaConf  # noqa: E402

from models.design.stages import ARCHITECTURE_KEYS, SIZES, STAGES  # noqa: E402  (the stage graph, declared once)
from training.named_run import finish_run, log_dir, named_run  # noqa: E402
from training.toolkit.checkpoints import stored_config  # noqa: E402


def stage_checkpoint(name: str, run_name: str, size: str) -> str:
    """The best checkpoint a finished stage reported (its newest state when it monitored nothing)."""
    run = named_run(STAGES[name].run_at(size)[0], run_name)
    checkpoint = run.result_checkpoint()
    if not checkpoint:
        raise SystemExit(
            f"design pipeline: stage {name!r} has no finished run with a checkpoint in {run.dir}; "
            f"run it first (add it to --stages) or pick the --run-name that has it."
        )
    return checkpoint


def override_value(value: object) -> str:
    """`value` (a plain config value) in Hydra's override grammar."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "[" + ",".join(override_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}:{override_value(item)}" for key, item in value.items()) + "}"
    if isinstance(value, str):
        return "'" + value.replace("'", "\\'") + "'"  # quoted: dots, colons and digits stay a string
    return repr(value)


def architecture_overrides(checkpoint: str) -> list[str]:
    """Overrides that replace each of ARCHITECTURE_KEYS by the node the run config of `checkpoint` holds
    (deleted, then added whole: no key of the stage's own config survives beside the decoder's)."""
    stored = OmegaConf.create(stored_config(checkpoint, checkpoint) or {})
    overrides = []
    for key in ARCHITECTURE_KEYS:
        node = OmegaConf.select(stored, key)
        if node is not None:
            overrides += [f"~{key}", f"+{key}={override_value(OmegaConf.to_container(node))}"]
    return overrides


def run_stage(name: str, run_name: str, size: str, overrides: list[str], python: str) -> dict:
    stage = STAGES[name]
    experiment, size_settings = stage.run_at(size)
    hand_off = []
    if not named_run(experiment, run_name).finished:
        hand_off = [
            f"{key}={stage_checkpoint(source, run_name, size)}" for key, source in stage.needs.items()
        ]
        if stage.architecture_from:
            hand_off += architecture_overrides(stage_checkpoint(stage.architecture_from, run_name, size))
        hand_off += [*size_settings, *stage.pipeline_settings]
    run = finish_run(experiment, run_name, [*hand_off, *overrides], f"[design pipeline] {name}", python)
    return {
        "run_dir": str(run.dir),
        "checkpoint": stage_checkpoint(name, run_name, size),
        **({"fid_features": run.summary["fid_features"]} if "fid_features" in run.summary else {}),
        **run.summary.get("metrics", {}),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size",
        choices=SIZES,
        default="cpu",
        help="cpu: each stage's own experiment (2 cores); gpu: the seed's 256² canvas on one GPU",
    )
    parser.add_argument(
        "--run-name", help="run name of every stage (default: pipeline; pipeline_gpu at --size gpu)"
    )
    parser.add_argument(
        "--stages", default=",".join(STAGES), help=f"comma-separated, in order (of {list(STAGES)})"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="STAGE:KEY=VALUE", help="a stage's override"
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter of the stages")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides given to every stage")
    args = parser.parse_args(argv)
    args.run_name = args.run_name or ("pipeline" if args.size == "cpu" else f"pipeline_{args.size}")
    args.stages = [s for s in args.stages.split(",") if s]
    unknown = [s for s in args.stages if s not in STAGES]
    if unknown:
        parser.error(f"--stages: unknown {unknown}; stages are {list(STAGES)}")
    args.per_stage = {name: [] for name in STAGES}
    for item in args.set:
        name, sep, override = item.partition(":")
        if not sep or name not in STAGES or "=" not in override:
            parser.error(f"--set {item!r}: write STAGE:KEY=VALUE with STAGE one of {list(STAGES)}")
        args.per_stage[name].append(override)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    results = {
        name: run_stage(name, args.run_name, args.size, [*args.overrides, *args.per_stage[name]], args.python)
        for name in args.stages
    }
    record = log_dir() / "design_pipeline" / f"{args.run_name}.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(record.read_text()) if record.is_file() else {}
    record.write_text(json.dumps({**previous, **results}, indent=2))
    print(f"[design pipeline] done: {record}", flush=True)
    return results


if __name__ == "__main__":
    main()
