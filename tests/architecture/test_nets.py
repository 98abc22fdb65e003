"""Every system's plain networks (`models/<system>/nets/`) load without Lightning or data code, not even
through what they import at run time (the import contract in pyproject.toml checks the static graph)."""

import subprocess
import sys

from tests.helpers import REPO

FORBIDDEN = ("pytorch_lightning", "lightning", "lightning_fabric", "datamodules")
NETS = sorted(
    ".".join(path.relative_to(REPO).with_suffix("").parts) for path in REPO.glob("models/*/nets/[!_]*.py")
)


def test_every_system_has_plain_networks():
    systems = {path.parent.name for path in (REPO / "models").glob("*/__init__.py")} - {"common"}
    assert {name.split(".")[1] for name in NETS} == systems


def test_the_networks_load_without_lightning_or_datamodules():
    script = (
        f"import importlib, sys\nfor name in {NETS!r}: importlib.import_module(name)\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout
