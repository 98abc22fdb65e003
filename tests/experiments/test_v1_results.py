"""experiments/v1_results.py: runs the table's rows by name, reuses finished runs, judges the spec's targets
from the runs' summaries and writes the table between the doc's markers."""

import os
import threading
from unittest import mock

import pytest

from tests.helpers import cli_env, load_script

v1_results = load_script("experiments/v1_results.py")

DOC = "# v1\n\nbefore\n\n{begin}\nold table\n{end}\n\nafter\n"


def _doc(tmp_path):
    doc = tmp_path / "docs" / "v1.md"
    doc.parent.mkdir()
    doc.write_text(DOC.format(begin=v1_results.BEGIN, end=v1_results.END))
    return doc


def _result(key: str, *metrics: dict[str, float]) -> v1_results.Result:
    row = next(row for row in v1_results.table_rows("small") if row.key == key)
    return v1_results.Result(row, list(metrics), [60.0] * len(metrics), [])


def test_rows_cover_every_model_and_tier_and_the_small_t1_sessions():
    rows = v1_results.table_rows("small")
    keys = [row.key for row in rows]
    for key in (
        "t0_null",
        "t0_ln",
        "t0_cnn",
        "t1_core",
        "t2_core",
        "t3_pretrain",
        "t3_frozen_25",
        "t3_frozen_100",
    ):
        assert key in keys
    # T1 small: subjA_s01 (25 units), subjA_s02 (46), subjA_s03 (32), subjB_s01 (39); not the 53- and 60-unit ones.
    singles = sorted(k.removeprefix("t1_single_") for k in keys if k.startswith("t1_single_"))
    assert singles == ["subjA_s01", "subjA_s02", "subjA_s03", "subjB_s01"]
    by_key = {r.key: r for r in rows}  # like for like: the shared core's own experiment, one session more
    for name in singles:
        single = by_key[f"t1_single_{name}"]
        assert single.experiment == by_key["t1_core"].experiment
        assert single.overrides == (*by_key["t1_core"].overrides, f"data.sessions=[{name}]")
    assert [r.key for r in v1_results.select(rows, "t3")] == ["t3_pretrain", "t3_frozen_25", "t3_frozen_100"]
    with pytest.raises(SystemExit, match="no row matches"):
        v1_results.select(rows, "t9")


def test_compile_reaches_the_rows_with_a_core_and_transfer_rows_get_their_pretrained_core(monkeypatch):
    rows = {row.key: row for row in v1_results.table_rows("small")}
    calls = {}
    monkeypatch.setattr(
        v1_results, "finish_run", lambda exp, name, overrides, tag, **_: calls.update({name: overrides})
    )
    pretrain_run = mock.Mock(result_checkpoint=lambda: "/runs/pre/best.ckpt")
    monkeypatch.setattr(v1_results, "named_run", lambda exp, name: pretrain_run)
    for key in ("t0_null", "t0_cnn", "t3_frozen_25"):
        v1_results.run_row(rows[key], "small", 1, ["torch_threads=1"], rows, compile_core=True)
    assert calls["v1results_small_t0_null_s1"] == [
        "model=v1_null",
        "trainer.max_epochs=1",
        "seed=1",
        "torch_threads=1",
    ]
    assert calls["v1results_small_t0_cnn_s1"] == ["seed=1", "model.compile_model=true", "torch_threads=1"]
    assert calls["v1results_small_t3_frozen_25_s1"][-1] == "model.pretrained_checkpoint=/runs/pre/best.ckpt"


def _run_side_by_side(monkeypatch, tmp_path, chosen, rows, finish_run, jobs: int) -> str:
    """`run_rows` over seeds 0 and 1 with `finish_run` standing in for the runs (every pretraining reports a
    checkpoint); returns the message of the SystemExit it must end with."""
    monkeypatch.setattr(v1_results, "finish_run", finish_run)
    monkeypatch.setattr(
        v1_results, "named_run", lambda exp, name: mock.Mock(result_checkpoint=lambda: "best.ckpt")
    )
    monkeypatch.setenv("VISIONCORE_ROOT", str(tmp_path))
    with pytest.raises(SystemExit) as stopped:
        v1_results.run_rows(chosen, "small", range(2), [], rows, compile_core=False, jobs=jobs)
    return str(stopped.value)


def test_jobs_run_rows_side_by_side_transfer_after_its_pretraining_and_a_failure_stops_none(
    monkeypatch, tmp_path
):
    rows = {row.key: row for row in v1_results.table_rows("small")}
    chosen = [rows[key] for key in ("t0_null", "t3_pretrain", "t3_frozen_25", "t3_frozen_100")]
    finished, outputs, lock = [], {}, threading.Lock()

    def finish_run(experiment, name, overrides, tag, output=None):
        if name == "v1results_small_t0_null_s1":
            raise SystemExit("the run ended 'failed'")
        if "frozen" in name:  # its seed's pretraining finished before it started
            assert name.replace("frozen_25", "pretrain").replace("frozen_100", "pretrain") in finished
        with lock:
            finished.append(name)
            outputs[name] = output

    message = _run_side_by_side(monkeypatch, tmp_path, chosen, rows, finish_run, jobs=3)
    assert sorted(finished) == sorted(
        f"v1results_small_{key}_s{seed}" for key in ("t0_null", "t3_pretrain", "t3_frozen_25", "t3_frozen_100")
        for seed in (0, 1)
        if (key, seed) != ("t0_null", 1)
    )  # fmt: skip
    assert "1 of 8 runs" in message and "t0_null seed 1" in message and "Rerun the same command" in message
    assert str(tmp_path / "logs" / "v1_results" / "v1results_small_t0_null_s1.log") in message
    assert (
        outputs["v1results_small_t3_pretrain_s0"]
        == tmp_path / "logs" / "v1_results" / "v1results_small_t3_pretrain_s0.log"
    )


def test_jobs_start_no_transfer_whose_pretraining_failed_and_say_so(monkeypatch, tmp_path):
    rows = {row.key: row for row in v1_results.table_rows("small")}
    chosen = [rows[key] for key in ("t3_pretrain", "t3_frozen_25", "t3_frozen_100")]
    started = []

    def finish_run(experiment, name, overrides, tag, output=None):
        started.append(name)
        if name == "v1results_small_t3_pretrain_s1":
            raise SystemExit("the run ended 'failed'")

    message = _run_side_by_side(monkeypatch, tmp_path, chosen, rows, finish_run, jobs=2)
    assert sorted(started) == sorted(
        ["v1results_small_t3_pretrain_s0", "v1results_small_t3_pretrain_s1",
         "v1results_small_t3_frozen_25_s0", "v1results_small_t3_frozen_100_s0"]
    )  # fmt: skip
    assert "3 of 6 runs" in message
    assert "t3_frozen_25 seed 1 (not started: t3_pretrain seed 1 failed)" in message
    assert "t3_frozen_100 seed 1 (not started: t3_pretrain seed 1 failed)" in message


def test_one_job_runs_in_order_with_the_output_on_the_console(monkeypatch):
    rows = {row.key: row for row in v1_results.table_rows("small")}
    calls = []
    monkeypatch.setattr(
        v1_results, "finish_run", lambda exp, name, overrides, tag, output=None: calls.append((name, output))
    )
    v1_results.run_rows(
        [rows["t0_null"], rows["t0_ln"]], "small", range(2), [], rows, compile_core=False, jobs=1
    )
    assert calls == [
        (f"v1results_small_{key}_s{seed}", None) for seed in (0, 1) for key in ("t0_null", "t0_ln")
    ]


def test_targets_are_judged_from_the_seed_means_and_unmeasured_ones_say_so():
    results = {
        "t0_cnn": _result("t0_cnn", {"test/fraction_of_oracle": 0.91}, {"test/fraction_of_oracle": 0.88}),
        "t1_core": _result("t1_core", {"test/fraction_of_oracle": 0.86, "test/bps/subjA_s01": 0.9}),
        "t1_single_subjA_s01": _result("t1_single_subjA_s01", {"test/bps/subjA_s01": 0.8}),
        "t3_frozen_25": _result("t3_frozen_25", {"test/fraction_of_oracle": 0.76}),
        "t3_frozen_100": _result("t3_frozen_100", {"test/fraction_of_oracle": 0.8}),
    }
    lines = v1_results.targets_table(results)
    by_check = {line.split(" | ")[0].removeprefix("| "): line for line in lines[2:]}
    assert "0.895 ± 0.021" in by_check["T0"] and by_check["T0"].endswith("| **no** |")  # mean 0.895 < 0.90
    assert by_check["T1 pooled"].endswith("| yes |")
    assert "not run" in by_check["T1 median unit"] and by_check["T1 median unit"].endswith("| – |")
    assert "subjA_s01: 0.900 vs 0.800" in by_check["multi-session benefit (sessions ≤ 50 units)"]
    assert "0.95×" in by_check["T3 transfer"] and by_check["T3 transfer"].endswith("| yes |")
    table = v1_results.results_table(results, "small")
    assert any(line.startswith("| T0 | single-session CNN | 2 | 0.895 ± 0.021 |") for line in table)


def test_a_doc_without_markers_is_refused_and_nothing_is_lost(tmp_path):
    doc = tmp_path / "v1.md"
    doc.write_text("# v1\n")
    with pytest.raises(SystemExit, match="markers"):
        v1_results.write_doc(doc, {}, "small", [0], [])
    assert doc.read_text() == "# v1\n"


def test_tiny_rows_run_once_then_are_reused_and_tabulated(tmp_path, capsys):
    doc = _doc(tmp_path)
    args = [
        "--rows",
        "t0_null,t0_cnn",
        "--doc",
        str(doc),
        "size=tiny",
        "trainer.max_epochs=2",
        "torch_threads=1",
    ]
    with mock.patch.dict(os.environ, cli_env(tmp_path), clear=True):
        results = v1_results.main(args)
        first = doc.read_text()
        assert "finished earlier" not in capsys.readouterr().out
        v1_results.main(args)  # finished runs are reused, not rerun
        assert capsys.readouterr().out.count("finished earlier") == 2
        v1_results.main(["--collect", *args])
    cnn = results["t0_cnn"]
    assert len(cnn.metrics) == 1 and cnn.curves[0][-1][0] == 1  # two epochs of validation
    assert -1 < cnn.mean("test/fraction_of_oracle") < 1 and cnn.mean("test/oracle_bps") > 0
    assert first.startswith("# v1\n\nbefore\n\n" + v1_results.BEGIN) and first.endswith(
        v1_results.END + "\n\nafter\n"
    )
    assert "old table" not in first and "| T0 | single-session CNN | 1 |" in first
    assert "| T1 | multi-session shared core | 0 |" in first  # rows not run stay in the table, empty
    assert (doc.parent / "images" / v1_results.CURVES).stat().st_size > 1000
    assert (
        doc.parent / "images" / "v1_t0_bps_vs_oracle.png"
    ).is_file() and "(images/v1_t0_bps_vs_oracle.png)" in first
    assert doc.read_text() == first  # --collect rebuilds the same block
