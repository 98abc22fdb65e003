"""Systems plug in through `plugins` in the config: the runner imports what a config lists, nothing else."""

import sys

import pytest

from tests.helpers import compose_config
from training.plugins import load_plugins
from training.toolkit.errors import ConfigValueError


def test_a_v1_experiment_lists_its_migrations_and_loading_it_registers_them(monkeypatch):
    from training.toolkit import legacy

    monkeypatch.setattr(legacy, "MIGRATIONS", dict(legacy.MIGRATIONS))
    monkeypatch.delitem(sys.modules, "models.v1.legacy", raising=False)
    for name in [n for n in legacy.MIGRATIONS if n.startswith("v1_")]:
        del legacy.MIGRATIONS[name]
    cfg = compose_config(["experiment=v1_single"])
    assert cfg.plugins.v1_migrations == "models.v1.legacy"
    load_plugins(cfg)
    assert any(name.startswith("v1_") for name in legacy.MIGRATIONS)


def test_the_default_config_lists_no_plugin():
    assert dict(compose_config([]).plugins) == {}


@pytest.mark.parametrize(
    "module, says",
    [("os", "not a module of a VisionCore system"), ("models.no_such_system.legacy", "cannot be imported")],
)
def test_a_plugin_outside_visioncore_or_missing_is_one_paragraph(module, says):
    with pytest.raises(ConfigValueError, match=says) as caught:
        load_plugins({"plugins": {"mine": module}})
    assert "plugins.mine" in str(caught.value)
