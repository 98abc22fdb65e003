"""The v1 results table: tiers x models, every number from a run of `python -m training.run`.

    python experiments/v1_results.py                        # every row at the small size, seed 0 (CPU: hours)
    python experiments/v1_results.py --rows t0 --seeds 3    # the T0 rows with seeds 0, 1, 2
    python experiments/v1_results.py --collect              # rebuild the table from the finished runs only
    python experiments/v1_results.py --rows t1_core size=full   # overrides go to every run (GPU size)
    python experiments/v1_results.py --seeds 3 --jobs 2 torch_threads=1   # two runs at a time on 2 cores
    python experiments/v1_results.py --seeds 3 --jobs 8 trainer=gpu       # the small size, 8 runs on one GPU

Rows: null (mean rate), per-unit LN, single-session CNN (T0, and each T1 session with <= 50 units for
the multi-session benefit), multi-session shared core (T1), shared core + shifter (T2), a core pretrained
on the T3 sessions with new readouts on held-out sessions (25 % and 100 % of their data); the oracle's
numbers come with every row. `--rows` takes keys or prefixes (t0, t1_core, t3).

Each (row, seed) is the run `logs/<experiment>/runs/v1results_<size>_<row>_s<seed>`: finished runs are
reused, unfinished ones resume. The targets of the spec, the table (mean +- sd over the seeds that
finished), the learning curves and the T0/T1 headline runs' test pictures go into the doc (default
docs/v1.md) between the `v1-results` markers, the pictures to `images/` beside it.
"""

from __future__ import annotations

import argparse
import csv
import math
import shutil
import statistics
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from datamodules.v1.simulator.configs import simulated_dataset  # noqa: E402
from training.named_run import finish_run, log_dir, named_run  # noqa: E402

SMALL_SESSION_UNITS = 50  # the spec's multi-session benefit is judged on sessions this small
BEGIN, END = "<!-- v1-results:begin -->", "<!-- v1-results:end -->"
CURVES = "v1_learning_curves.png"
BASELINES = ("model=v1_null", "model=v1_ln")
PICTURES = {"t0_cnn": "v1_t0", "t1_core": "v1_t1"}  # rows whose first run's test pictures the doc shows


@dataclass(frozen=True)
class Row:
    key: str
    tier: str
    model: str
    experiment: str
    overrides: tuple[str, ...] = ()
    pretrained: str | None = None  # key of the row whose best checkpoint this row's core starts from

    @property
    def has_core(self) -> bool:
        """False for the baselines (null, LN), whose networks have no core to compile."""
        return not any(o in BASELINES for o in self.overrides)


def table_rows(size: str) -> list[Row]:
    """Every row at `size` (the T1 sessions small enough for the multi-session benefit come from the tier)."""
    _, sessions = simulated_dataset(f"t1_{size}")
    small = [s.name for s in sessions if s.num_units <= SMALL_SESSION_UNITS]
    null = ("model=v1_null", "trainer.max_epochs=1")  # the readout bias starts at the mean rate already
    return [
        Row("t0_null", "T0", "null (mean rate)", "v1_single", null),
        Row("t0_ln", "T0", "per-unit LN", "v1_single", ("model=v1_ln",)),
        Row("t0_cnn", "T0", "single-session CNN", "v1_single"),
        Row("t1_null", "T1", "null (mean rate)", "v1_multidataset", null),
        Row("t1_ln", "T1", "per-unit LN", "v1_multidataset", ("model=v1_ln",)),
        Row("t1_core", "T1", "multi-session shared core", "v1_multidataset"),
        # The multi-session benefit like for like: the shared core's own experiment (model, output, epochs)
        # on one session.
        *(
            Row(
                f"t1_single_{name}",
                "T1",
                f"single-session CNN on {name}",
                "v1_multidataset",
                (f"data.sessions=[{name}]",),
            )
            for name in small
        ),  # fmt: skip
        Row("t2_core", "T2", "shared core + shifter", "v1_realistic"),
        Row("t3_pretrain", "T3", "shared core + shifter on the pretraining sessions", "v1_pretrain"),
        *(
            Row(
                f"t3_frozen_{percent}",
                "T3",
                f"frozen core + new readouts and shifters, {percent} % of the data",
                "v1_transfer",
                (f"data.train_fraction={percent / 100}",),
                pretrained="t3_pretrain",
            )
            for percent in (25, 100)
        ),  # fmt: skip
    ]


def select(rows: Sequence[Row], wanted: str | None) -> list[Row]:
    """Rows whose key equals or starts with one of the comma-separated `wanted` (all rows for None)."""
    if not wanted:
        return list(rows)
    keys = [w for w in wanted.split(",") if w]
    chosen = [row for row in rows if any(row.key == k or row.key.startswith(k) for k in keys)]
    unknown = [k for k in keys if not any(row.key.startswith(k) for row in rows)]
    if unknown:
        raise SystemExit(f"--rows: no row matches {unknown}; rows are {[row.key for row in rows]}")
    return chosen


def run_name(size: str, row: Row, seed: int) -> str:
    return f"v1results_{size}_{row.key}_s{seed}"


def run_row(
    row: Row,
    size: str,
    seed: int,
    overrides: Sequence[str],
    by_key: dict[str, Row],
    compile_core: bool,
    output: Path | None = None,
) -> None:
    extra = [*row.overrides, f"seed={seed}", *(["model.compile_model=true"] if compile_core and row.has_core else []),
             *overrides]  # fmt: skip
    if row.pretrained:
        source = by_key[row.pretrained]
        checkpoint = named_run(source.experiment, run_name(size, source, seed)).result_checkpoint()
        if not checkpoint:
            raise SystemExit(f"v1 results: {row.key} needs the finished row {source.key} (add it to --rows).")
        extra.append(f"model.pretrained_checkpoint={checkpoint}")
    finish_run(
        row.experiment, run_name(size, row, seed), extra, f"[v1 results] {row.key} seed {seed}", output=output
    )


def console_log(size: str, row: Row, seed: int) -> Path:
    """Where a run started beside others writes its console output: logs/v1_results/<run name>.log."""
    return log_dir() / "v1_results" / f"{run_name(size, row, seed)}.log"


def run_rows(
    rows: Sequence[Row],
    size: str,
    seeds: Sequence[int],
    overrides: Sequence[str],
    by_key: dict[str, Row],
    compile_core: bool,
    jobs: int = 1,
) -> None:
    """Every (row, seed), `jobs` at a time. Side by side, each run writes to its `console_log`, the rows whose
    core comes from another row start once the others ended, and a run that fails stops no other: the
    script ends with one message naming every unfinished run and its output."""
    tasks = [(row, seed) for seed in seeds for row in rows]
    if jobs == 1:
        for row, seed in tasks:
            run_row(row, size, seed, overrides, by_key, compile_core)
        return
    unfinished, failed = [], set()
    for wave in ([t for t in tasks if not t[0].pretrained], [t for t in tasks if t[0].pretrained]):
        blocked = [(row, seed) for row, seed in wave if (row.pretrained, seed) in failed]
        unfinished += [
            f"{row.key} seed {seed} (not started: {row.pretrained} seed {seed} failed)"
            for row, seed in blocked
        ]
        with ThreadPoolExecutor(jobs) as pool:
            futures = {
                pool.submit(
                    run_row, row, size, seed, overrides, by_key, compile_core, console_log(size, row, seed)
                ): (row, seed)
                for row, seed in wave
                if (row, seed) not in blocked
            }
        for future, (row, seed) in futures.items():
            if future.exception() is not None:
                failed.add((row.key, seed))
                unfinished.append(f"{row.key} seed {seed} (output: {console_log(size, row, seed)})")
    if unfinished:
        raise SystemExit(
            f"v1 results: {len(unfinished)} of {len(tasks)} runs did not finish: {'; '.join(unfinished)}. "
            "The others did. Rerun the same command: finished runs are reused, unfinished ones resume."
        )


# -- collecting -----------------------------------------------------------------------------------------


@dataclass
class Result:
    row: Row
    metrics: list[dict[str, float]]  # one per finished seed
    wall_times: list[float]
    curves: list[list[tuple[int, float]]]  # per seed: (epoch, val/fraction_of_oracle)
    run_dirs: list[Path] = field(default_factory=list)

    def values(self, key: str) -> list[float]:
        return [m[key] for m in self.metrics if isinstance(m.get(key), int | float) and math.isfinite(m[key])]

    def mean(self, key: str) -> float | None:
        values = self.values(key)
        return statistics.fmean(values) if values else None

    def cell(self, key: str, digits: int = 3) -> str:
        values = self.values(key)
        if not values:
            return "–"
        text = f"{statistics.fmean(values):.{digits}f}"
        return text + (f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else "")


def learning_curve(run_dir: Path) -> list[tuple[int, float]]:
    """(epoch, val/fraction_of_oracle) from the run's metrics.csv (empty when it logged none)."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        points = {
            int(float(r["epoch"])): float(r["val/fraction_of_oracle"])
            for r in csv.DictReader(handle)
            if r.get("val/fraction_of_oracle") not in (None, "") and r.get("epoch") not in (None, "")
        }
    return sorted(points.items())


def collect(rows: Sequence[Row], size: str, seeds: Sequence[int]) -> dict[str, Result]:
    results = {}
    for row in rows:
        result = Result(row, [], [], [])
        for seed in seeds:
            run = named_run(row.experiment, run_name(size, row, seed))
            if not run.finished:
                continue
            summary = run.summary
            result.metrics.append(summary.get("metrics", {}))
            result.wall_times.append(float(summary.get("wall_time_s") or math.nan))
            result.curves.append(learning_curve(run.dir))
            result.run_dirs.append(run.dir)
        results[row.key] = result
    return results


# -- the tables -----------------------------------------------------------------------------------------

COLUMNS = (
    ("fraction of oracle (pooled)", "test/fraction_of_oracle"),
    ("median unit", "test/fraction_of_oracle_median"),
    ("simple", "test/fraction_of_oracle/simple"),
    ("complex", "test/fraction_of_oracle/complex"),
    ("other", "test/fraction_of_oracle/other"),
    ("bits/spike", "test/bps"),
    ("oracle bits/spike", "test/oracle_bps"),
    ("single-trial r (median)", "test/cc_median"),
    ("FEVE (median)", "test/feve_median"),
    ("noise-corrected r (median)", "test/cc_norm_median"),
)


def results_table(results: dict[str, Result], size: str) -> list[str]:
    head = ["tier", "model", "seeds", *(name for name, _ in COLUMNS), "wall time / run", "row"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for result in results.values():
        row = result.row
        wall = f"{statistics.fmean(result.wall_times) / 60:.1f} min" if result.wall_times else "–"
        cells = [row.tier, row.model, str(len(result.metrics)), *(result.cell(k) for _, k in COLUMNS), wall]
        lines.append("| " + " | ".join([*cells, f"`{row.key}`"]) + " |")
    return lines


@dataclass(frozen=True)
class Target:
    check: str
    target: str
    measure: Callable[[dict[str, Result]], tuple[str, bool | None]]  # (measured, met; None: not measured)


def _at_least(key: str, metric: str, bound: float) -> Callable[[dict[str, Result]], tuple[str, bool | None]]:
    def measure(results: dict[str, Result]) -> tuple[str, bool | None]:
        result = results.get(key)
        value = result.mean(metric) if result else None
        return ("not run", None) if value is None else (result.cell(metric), value >= bound)

    return measure


def _shifter(results: dict[str, Result]) -> tuple[str, bool | None]:
    result = results.get("t2_core")
    error = result.mean("test/shifter_error_deg") if result else None
    return (
        ("not run", None) if error is None else (f"{result.cell('test/shifter_error_deg')}°", error <= 0.05)
    )


def _multi_session_benefit(results: dict[str, Result]) -> tuple[str, bool | None]:
    """Shared core vs single-session CNN on each small T1 session, in test bits/spike of that session."""
    core = results.get("t1_core")
    pairs = []
    for key, single in results.items():
        if key.startswith("t1_single_") and core is not None:
            session = key.removeprefix("t1_single_")
            shared, alone = core.mean(f"test/bps/{session}"), single.mean(f"test/bps/{session}")
            if shared is not None and alone is not None:
                pairs.append((session, shared, alone))
    if not pairs:
        return "not run", None
    text = "; ".join(f"{s}: {shared:.3f} vs {alone:.3f}" for s, shared, alone in pairs)
    return text + " bits/spike (shared vs alone)", all(shared > alone for _, shared, alone in pairs)


def _transfer(results: dict[str, Result]) -> tuple[str, bool | None]:
    part, full = results.get("t3_frozen_25"), results.get("t3_frozen_100")
    a = part.mean("test/fraction_of_oracle") if part else None
    b = full.mean("test/fraction_of_oracle") if full else None
    if a is None or b is None:
        return "not run", None
    return f"{a:.3f} / {b:.3f} = {a / b:.2f}×", a >= 0.9 * b


TARGETS = (
    Target("T0", "≥ 0.90 of oracle (pooled)", _at_least("t0_cnn", "test/fraction_of_oracle", 0.90)),
    Target("T1 pooled", "≥ 0.85", _at_least("t1_core", "test/fraction_of_oracle", 0.85)),
    Target("T1 median unit", "≥ 0.75", _at_least("t1_core", "test/fraction_of_oracle_median", 0.75)),
    Target("T1 complex cells", "≥ 0.75", _at_least("t1_core", "test/fraction_of_oracle/complex", 0.75)),
    Target(
        "T2 pooled, of the achievable oracle",
        "≥ 0.80",
        _at_least("t2_core", "test/fraction_of_achievable", 0.80),
    ),
    Target("T2 shifter error", "≤ 0.05°", _shifter),
    Target(
        "multi-session benefit (sessions ≤ 50 units)",
        "shared core beats single-session",
        _multi_session_benefit,
    ),
    Target("T3 transfer", "frozen core, 25 % of the data ≥ 0.9× of 100 %", _transfer),
)


def targets_table(results: dict[str, Result]) -> list[str]:
    lines = ["| check | target | measured | met |", "|---|---|---|---|"]
    for target in TARGETS:
        measured, met = target.measure(results)
        verdict = "–" if met is None else ("yes" if met else "**no**")
        lines.append(f"| {target.check} | {target.target} | {measured} | {verdict} |")
    return lines


def plot_curves(results: dict[str, Result], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn = [
        (r, curve) for r in results.values() for curve in r.curves[:1] if curve and "null" not in r.row.key
    ]
    if not drawn:
        return False
    figure, axes = plt.subplots(figsize=(7, 4))
    styles = {"T0": "-", "T1": "--", "T2": "-.", "T3": ":"}
    colors = plt.get_cmap("tab20").colors  # one colour per row (the default cycle repeats after 10)
    for index, (result, curve) in enumerate(drawn):
        epochs, values = zip(*curve, strict=True)
        axes.plot(
            [e + 1 for e in epochs], values, styles.get(result.row.tier, "-"), marker=".",
            color=colors[index % len(colors)], label=f"{result.row.tier} {result.row.model}",
        )  # fmt: skip
    axes.set(xlabel="epoch", ylabel="validation fraction of oracle", ylim=(0, 1))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def copy_pictures(results: dict[str, Result], images: Path) -> list[str]:
    """The test pictures (models/v1/plots.py) of each `PICTURES` row's first finished run, as
    `images/<prefix>_<picture>.png`; returns the doc's image lines."""
    lines = []
    for key, prefix in PICTURES.items():
        result = results.get(key)
        for picture in sorted(result.run_dirs[0].glob("images/*.png")) if result and result.run_dirs else []:
            target = images / f"{prefix}_{picture.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(picture, target)
            lines.append(f"![{result.row.tier} {result.row.model}: {picture.stem}](images/{target.name})")
    return lines


def write_doc(
    doc: Path,
    results: dict[str, Result],
    size: str,
    seeds: Sequence[int],
    overrides: Sequence[str],
    options: Sequence[str] = (),
) -> None:
    text = doc.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(
            f"v1 results: {doc} has no {BEGIN} ... {END} markers; add them where the table goes."
        )
    command = " ".join(["python experiments/v1_results.py", f"--seeds {len(seeds)}", *options, *overrides])
    block = [
        BEGIN,
        f"Size `{size}`; every row: `{command} --rows ROW` (the last column names the row; "
        "`--collect` rebuilds this block from the runs). Mean ± sd over the seeds that finished.",
        "",
        *targets_table(results),
        "",
        *results_table(results, size),
    ]
    if plot_curves(results, doc.parent / "images" / CURVES):
        block += ["", f"![validation fraction of oracle per epoch](images/{CURVES})"]
    pictures = copy_pictures(results, doc.parent / "images")
    block += ["", *pictures] if pictures else []
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    doc.write_text(head + "\n".join([*block, END]) + tail)
    print(f"[v1 results] wrote the table into {doc}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", default=None, help="comma-separated row keys or prefixes (default: all)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0 .. N-1 per row (default 1)")
    parser.add_argument("--collect", action="store_true", help="run nothing; tabulate the finished runs")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="compile the core of the rows that have one (CPU: ~15 %% faster)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs side by side (2 on 2 CPU cores with torch_threads=1)",
    )
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "v1.md", help="the doc with the markers")
    parser.add_argument(
        "overrides", nargs="*", help="Hydra overrides for every run (size=... picks the size)"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: give the number of runs side by side, 1 or more.")
    return args


def main(argv: list[str] | None = None) -> dict[str, Result]:
    args = parse_args(argv)
    size = next((o.partition("=")[2] for o in args.overrides if o.startswith("size=")), "small")
    rows = table_rows(size)
    chosen, seeds = select(rows, args.rows), range(args.seeds)
    if not args.collect:
        by_key = {row.key: row for row in rows}
        run_rows(chosen, size, seeds, args.overrides, by_key, args.compile, args.jobs)
    results = collect(rows, size, seeds)
    write_doc(args.doc, results, size, seeds, args.overrides, ["--compile"] if args.compile else [])
    return results


if __name__ == "__main__":
    main()
