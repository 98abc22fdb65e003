"""`multirun_summary.csv` for a sweep, from its jobs' `summary.json` files (written by `training.run_state.Run`)."""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


class MultirunSummary(HydraCallback):
    """One CSV row per job of a sweep (overrides, status, error, metrics, throughput), rewritten after each
    job, so a sweep stopped midway still has its table, and logged at the end with the failed jobs."""

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        from hydra.types import RunMode

        if config.hydra.mode == RunMode.MULTIRUN:
            write_sweep_table(Path(str(config.hydra.sweep.dir)))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        rows = write_sweep_table(sweep_dir)
        if not rows:
            log.warning("No job summaries found under %s", sweep_dir)
            return
        failed = [row for row in rows if row["status"] == "failed"]
        log.info("Sweep summary (%d jobs, %d failed): %s", len(rows), len(failed), sweep_dir / SWEEP_TABLE)
        for row in failed:
            log.warning("Job %s (%s) failed: %s", row["job"], row["overrides"], row["error"])
        if len(failed) == len(rows):
            log.error("Every job of the sweep failed; see %s.", sweep_dir / SWEEP_TABLE)
            raise SystemExit(1)


SWEEP_TABLE = "multirun_summary.csv"


def write_sweep_table(sweep_dir: Path) -> list[dict[str, Any]]:
    """Write `multirun_summary.csv` from the jobs' summary.json files (atomically); returns the rows."""
    rows = []
    for summary in sorted(sweep_dir.glob("*/summary.json"), key=lambda p: _job_number(p.parent.name)):
        try:
            data = json.loads(summary.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        overrides_file = summary.parent / ".hydra" / "overrides.yaml"
        overrides = OmegaConf.load(overrides_file) if overrides_file.exists() else []
        row = {
            "job": summary.parent.name,
            "overrides": " ".join(overrides),
            "status": data.get("status"),
            "error": _one_line(data.get("error")),
            "samples_per_s": (data.get("performance") or {}).get("samples_per_s"),
            "wall_time_s": data.get("wall_time_s"),
            "params": data.get("params"),
        }
        if data.get("fid_features"):  # the extractor of a generative job's FID/KID metrics
            row["fid_features"] = data["fid_features"]
        row.update(data.get("metrics", {}))
        rows.append(row)
    if not rows:
        return rows
    columns = list(dict.fromkeys(key for row in rows for key in row))
    out = sweep_dir / SWEEP_TABLE
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(out)
    return rows


def _one_line(error: Any, limit: int = 500) -> str | None:
    if not error:
        return None
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _job_number(name: str) -> int:
    return int(name) if name.isdigit() else 1 << 30
