"""benchmarks/gpu_check.py: every GPU configuration is listed and composes; the whole pipeline runs on CPU."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import CONF_DIR, compose_config, load_script


def test_every_gpu_configuration_is_checked_and_composes_in_bf16() -> None:
    runs = load_script("benchmarks/gpu_check.py").gpu_configurations()
    named = {path.stem for path in (CONF_DIR / "experiment").glob("*_gpu.yaml")}
    assert named and named <= {experiment for experiment, _ in runs}
    assert ("v1_multidataset", ["size=full"]) in runs and ("v1_single", ["size=full"]) in runs
    for experiment, overrides in runs:
        cfg = compose_config([f"experiment={experiment}", *overrides, "trainer.precision=bf16-mixed"])
        assert cfg.trainer.accelerator == "gpu", experiment
        assert cfg.trainer.precision == "bf16-mixed"


def test_the_check_runs_end_to_end_on_cpu_and_writes_one_results_file(tmp_path: Path) -> None:
    """Everything but the CUDA calls: a run through the entry point, the efficiency row and the v1 data
    table, written as one markdown file."""
    out = tmp_path / "check.md"
    assert (
        load_script("benchmarks/gpu_check.py").main(
            ["--cpu", "--experiments", "cnn_digits", "--steps", "3", "--out", str(out)]
        )
        == 0
    )
    text = out.read_text()
    sections = text.split("\n## ")[1:]
    assert [s.splitlines()[0] for s in sections] == [
        "GPU configurations through `python -m training.run`",
        "Training steps on the device (efficiency.py --sync-check)",
        "v1 data paths (v1_data.py)",
    ]
    run_row = next(line for line in sections[0].splitlines() if line.startswith("| cnn_digits"))
    cells = [cell.strip() for cell in run_row.strip("|").split("|")]
    assert cells[2] == "ok" and float(cells[3]) > 0 and 0 <= float(cells[5]) <= 100
    step_row = next(line for line in sections[1].splitlines() if line.startswith("| cnn_digits"))
    assert "SmallCNN" in step_row and "%" in step_row
    assert "resident" in sections[2] and "host loader" in sections[2]


def test_the_v1_datasets_are_simulated_before_anything_is_timed(tmp_path: Path) -> None:
    lines = load_script("benchmarks/gpu_check.py").simulate_v1_datasets(
        [("cnn_digits", []), ("v1_single", ["size=tiny"])], tmp_path
    )
    assert len(lines) == 1 and lines[0].startswith("- v1_single size=tiny: t0_tiny simulated in")
    sessions = list((tmp_path / "data" / "v1" / "t0_tiny_seed0").glob("*/meta.json"))
    assert sessions  # the run that follows finds them and simulates nothing
