"""Print one comparison table from a sweep's `multirun_summary.csv` (written by training.summary.MultirunSummary).

    python experiments/compare_runs.py logs/cifar10_resnet20/multiruns/<id>/multirun_summary.csv
    python experiments/compare_runs.py --metric test/fraction_of_oracle logs/v1_multidataset/multiruns/<id>/...

One row per job, best score first (higher is better): the model (from the job's `model=` override, else
the overrides that differ between the jobs), the metric (default test/acc; its val/ counterpart where a job has no test metric,
marked with *), parameters, training samples/s, wall time and status. Jobs without the metric
(failed, preempted) come last.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_METRIC = "test/acc"


def metric_keys(metric: str) -> tuple[str, str]:
    """The metric and the stand-in for jobs that did not test: `test/x` -> (`test/x`, `val/x`)."""
    return metric, "val/" + metric.removeprefix("test/")


@dataclass(frozen=True)
class RunRow:
    job: str
    model: str
    score: float | None
    score_key: str | None
    params: int | None
    samples_per_s: float | None
    wall_time_s: float | None
    status: str


def _number(text: str | None) -> float | None:
    if text is None or text.strip() in ("", "None", "null"):
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


def _labels(records: list[dict[str, str]]) -> list[str]:
    """What tells the jobs apart: the `model=` choice, else the overrides that differ between jobs."""
    tokens = [record.get("overrides", "").split() for record in records]
    shared = set.intersection(*(set(t) for t in tokens)) if len(tokens) > 1 else set()
    labels = []
    for record, items in zip(records, tokens, strict=True):
        model = next((v for k, _, v in (i.partition("=") for i in items) if k.lstrip("+~") == "model"), None)
        varying = " ".join(item for item in items if item not in shared)
        labels.append(model or varying or " ".join(items) or f"job {record.get('job', '')}")
    return labels


def load_rows(path: Path, metric: str = DEFAULT_METRIC) -> list[RunRow]:
    """The sweep's jobs, best `metric` first (ties: faster first); jobs without it last."""
    with path.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    rows = []
    for record, label in zip(records, _labels(records), strict=True):
        key = next((k for k in metric_keys(metric) if _number(record.get(k)) is not None), None)
        params = _number(record.get("params"))
        rows.append(
            RunRow(
                job=record.get("job", ""),
                model=label,
                score=_number(record.get(key)) if key else None,
                score_key=key,
                params=int(params) if params is not None else None,
                samples_per_s=_number(record.get("samples_per_s")),
                wall_time_s=_number(record.get("wall_time_s")),
                status=record.get("status") or "?",
            )
        )
    return sorted(
        rows,
        key=lambda r: (r.score is None, -(r.score or 0.0), -(r.samples_per_s or 0.0), r.job),
    )


def _params(count: int | None) -> str:
    if count is None:
        return "-"
    return f"{count / 1e6:.2f}M" if count >= 10_000 else str(count)


def _wall(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def format_table(rows: list[RunRow], metric: str = DEFAULT_METRIC) -> str:
    """An aligned text table (one line per job) with a footnote when the val/ metric stood in."""
    test_key, val_key = metric_keys(metric)
    header = test_key if any(r.score_key == test_key for r in rows) else val_key
    body = [["#", "model", header, "params", "samples/s", "wall time", "status"]]
    for rank, row in enumerate(rows, start=1):
        score = "-" if row.score is None else f"{row.score:.4f}"
        if row.score is not None and row.score_key != header:
            score += "*"
        body.append(
            [
                str(rank),
                row.model,
                score,
                _params(row.params),
                "-" if row.samples_per_s is None else f"{row.samples_per_s:.1f}",
                _wall(row.wall_time_s),
                row.status,
            ]
        )
    widths = [max(len(line[i]) for line in body) for i in range(len(body[0]))]
    left = {1, 6}  # text columns; numbers are right-aligned
    lines = [
        "  ".join(
            cell.ljust(w) if i in left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in body
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if any(r.score is not None and r.score_key != header for r in rows):
        lines.append(f"* {val_key}: the job has no {header} (e.g. test_after_fit=false)")
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", type=Path, help="a sweep's multirun_summary.csv")
    parser.add_argument("--metric", default=DEFAULT_METRIC, help="column to rank by, higher is better")
    args = parser.parse_args(argv)
    if not args.csv.is_file():
        print(
            f"compare_runs: {args.csv} does not exist. Pass the multirun_summary.csv that a "
            "`python -m training.run --multirun ...` sweep writes into logs/<name>/multiruns/<id>/.",
            file=sys.stderr,
        )
        return 2
    rows = load_rows(args.csv, args.metric)
    if not rows:
        print(f"compare_runs: {args.csv} has no jobs.", file=sys.stderr)
        return 1
    print(f"{len(rows)} runs from {args.csv}")
    print(format_table(rows, args.metric))
    return 0


if __name__ == "__main__":
    sys.exit(main())
