"""logger=many: CSV, TensorBoard and offline wandb in the run directory; resume keeps the wandb id and the
rows metrics.csv already had."""

import csv

from tests.helpers import TINY, read_summary, run_main

RUN = [
    "experiment=cnn_digits",
    *TINY,
    "model.lr_schedule=null",
    "test_after_fit=false",
    "logger=many",
    "run_name=logged",
]


def _wandb_run_ids(run_dir):
    return sorted({path.name.rsplit("-", 1)[-1] for path in (run_dir / "wandb").glob("offline-run-*")})


def test_all_loggers_write_into_the_run_directory_and_resume_keeps_the_wandb_id(tmp_path):
    run_main(tmp_path, *RUN, "trainer.max_epochs=1")
    run_dir = tmp_path / "logs" / "cnn_digits" / "runs" / "logged"
    assert (run_dir / "metrics.csv").is_file()
    assert list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    first_ids = _wandb_run_ids(run_dir)
    assert len(first_ids) == 1

    # pretend the run was cut short, then continue it for one more epoch
    summary = read_summary(run_dir)
    (run_dir / "summary.json").write_text(
        (run_dir / "summary.json").read_text().replace('"finished"', '"running"')
    )
    run_main(tmp_path, *RUN, "trainer.max_epochs=2", "resume=auto")
    assert read_summary(run_dir)["attempts"] == summary["attempts"] + 1
    assert _wandb_run_ids(run_dir) == first_ids
    with (run_dir / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["epoch"] for row in rows if row.get("val/acc")} == {
        "0",
        "1",
    }  # Lightning's CSVLogger kept only "1"
