"""A test-only callback that slows training so a test can signal a run mid-epoch."""

import time

from pytorch_lightning.callbacks import Callback


class Throttle(Callback):
    def __init__(self, seconds_per_batch: float = 0.05) -> None:
        self.seconds_per_batch = seconds_per_batch

    def on_train_batch_end(self, *_: object) -> None:
        time.sleep(self.seconds_per_batch)
