"""metrics.csv that survives a resume.

Lightning's CSVLogger deletes an existing metrics.csv when its writer starts ("Previous log files in this
directory will be deleted"), so a run continued with `resume=auto` kept only the rows written after the
resume. Here the writer keeps the file and its columns and appends; steps logged again after a resume
(between the checkpoint and the interruption) appear twice, and the later row is the resumed run's.
"""

from __future__ import annotations

import csv

from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as handle:
                self.metrics_keys = list(csv.DictReader(handle).fieldnames or [])


class ResumableCSVLogger(CSVLogger):
    """`CSVLogger` whose metrics.csv keeps the rows of the run's earlier attempts."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment
