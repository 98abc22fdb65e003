"""Suite-wide settings: under pytest-xdist, torch's threads are split between the workers so that
`make test`'s parallel workers do not oversubscribe the cores (CLI tests already run with one thread)."""

import os

import torch

_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // _workers))
