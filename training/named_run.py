"""Scripts that chain runs (the design pipeline, the v1 results table) drive `python -m training.run` by run
name: a finished run is reused, an unfinished one resumes from its newest valid checkpoint (`resume=auto`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from training.run_state import Run

REPO = Path(__file__).resolve().parent.parent


def log_dir() -> Path:
    """Where the runner writes runs: `$VISIONCORE_ROOT/logs` (else ./logs)."""
    return Path(os.environ.get("VISIONCORE_ROOT", ".")) / "logs"


def named_run(experiment: str, run_name: str) -> Run:
    """The run `logs/<experiment>/runs/<run_name>` (`experiment` is the config's `name`)."""
    return Run.for_launch(str(log_dir()), experiment, run_name, "auto")


def finish_run(
    experiment: str,
    run_name: str,
    overrides: Sequence[str],
    tag: str,
    python: str = sys.executable,
    output: Path | None = None,
) -> Run:
    """Run `experiment` as `run_name` to the end unless it finished earlier; `tag` starts what is printed.
    `output`: a file the run's console output is appended to (runs side by side), else this console.

    Stops the script (SystemExit) when the run ends unfinished, so a chain never builds on a broken stage.
    """
    run = named_run(experiment, run_name)
    if run.finished:
        print(f"{tag}: finished earlier in {run.dir}, skipped", flush=True)
    else:
        command = [
            python, "-m", "training.run", f"experiment={experiment}", f"run_name={run_name}", "resume=auto",
            *overrides,
        ]  # fmt: skip
        print(f"{tag}: {' '.join(command[2:])}" + (f" (output: {output})" if output else ""), flush=True)
        if output is None:
            subprocess.run(command, cwd=REPO, check=True)
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            with output.open("a") as handle:
                subprocess.run(command, cwd=REPO, check=True, stdout=handle, stderr=subprocess.STDOUT)
    if not run.finished:
        raise SystemExit(f"{tag}: the run in {run.dir} ended {run.status!r}; rerun to resume it.")
    return run
