"""Fixtures of the v1 data-path tests: two tiny hand-built sessions and their dataset configs."""

import pytest

from tests.datamodules.v1.synthetic_sessions import TinyDataset, write_tiny_dataset


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> TinyDataset:
    """Sessions alpha (truth, behaviour, 3 stimulus blocks) and beta; read-only: do not modify them."""
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny_v1"))
