"""Systems plug in through `plugins` in the config: the runner imports what a config lists, nothing else."""

import sys

import pytest

from tests.helpers import compose_config
from training.plugins import load_plugins
from training.toolkit.errors import ConfigValueError
from training.toolkit.safe_load import UnsafeCheckpointError, trust_checkpoints


def test_a_v1_experiment_lists_its_migrations_and_loading_it_registers_them(monkeypatch):
    from training.toolkit import legacy

    monkeypatch.setattr(legacy, "MIGRATIONS", dict(legacy.MIGRATIONS))
    monkeypatch.delitem(sys.modules, "models.v1.legacy", raising=False)

    def from_v1() -> list[str]:
        return [n for n, m in legacy.MIGRATIONS.items() if type(m).__module__ == "models.v1.legacy"]

    for name in from_v1():
        del legacy.MIGRATIONS[name]
    cfg = compose_config(["experiment=v1_single"])
    assert cfg.plugins.v1_migrations == "models.v1.legacy"
    load_plugins(cfg)
    assert from_v1() == ["yates_visioncore_v1"]


def test_every_system_lists_only_its_own_plugins():
    assert dict(compose_config(["experiment=cnn_digits"]).plugins) == {"cnn_migrations": "models.cnn.legacy"}
    assert dict(compose_config(["experiment=ukiyoe_gan_nca"]).plugins) == {}  # nothing to register
    assert set(compose_config(["experiment=v1_multidataset"]).plugins) == {"v1_migrations", "v1_data"}


@pytest.mark.parametrize(
    "module, says", [("", "not a module path"), ("models.no_such.legacy", "cannot be imported")]
)
def test_a_bad_plugin_entry_is_one_paragraph(module, says):
    with pytest.raises(ConfigValueError, match=says) as caught:
        load_plugins({"plugins": {"mine": module}})
    assert "plugins.mine" in str(caught.value)


def test_a_checkpoint_s_config_may_list_only_visioncore_plugins_unless_trusted(monkeypatch):
    stored = {"plugins": {"evil": "antigravity"}}  # importing it would open a browser
    with pytest.raises(UnsafeCheckpointError, match="plugins.evil: antigravity.*trust_checkpoint=true"):
        load_plugins(stored, stored_in="old.ckpt")
    assert "antigravity" not in sys.modules
    load_plugins({"plugins": {"json": "json"}})  # the user's own composition may name any module
    with trust_checkpoints(True):
        load_plugins({"plugins": {"json": "json"}}, stored_in="old.ckpt")


def test_printing_a_resolved_config_loads_its_plugins_first():
    """`--cfg job --resolve` prints before any callback runs: the v1 resolvers must exist by then."""
    import subprocess

    from tests.helpers import REPO

    command = [
        sys.executable,
        "-m",
        "training.run",
        "experiment=v1_single",
        "size=tiny",
        "--cfg",
        "job",
        "--resolve",
    ]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "num_lags: 8" in result.stdout
