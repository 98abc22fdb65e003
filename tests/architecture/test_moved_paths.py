"""Every package's `MOVED` table (old dotted path -> new) is sound: each new path resolves, each old path is
gone (or, where a new package took an old module's name, is still read under its new path), and a package
records only moves out of itself. The per-system tests pin which old `_target_`s map to which class."""

import importlib
import pkgutil

import hydra
import pytest

import datamodules
import models
import training
from training.toolkit.moved_modules import upgrade_target


def _tables() -> dict[str, dict[str, str]]:
    packages = [training] + [
        importlib.import_module(info.name)
        for root in (models, datamodules)
        for info in pkgutil.iter_modules(root.__path__, f"{root.__name__}.")
        if info.ispkg
    ]
    return {package.__name__: package.MOVED for package in packages if getattr(package, "MOVED", None)}


TABLES = _tables()
ENTRIES = [(package, old, new) for package, table in TABLES.items() for old, new in table.items()]


def test_every_system_that_moved_code_has_a_table():
    assert {"training", "models.cnn", "models.v1", "models.design", "models.ukiyoe"} <= set(TABLES)


@pytest.mark.parametrize(("package", "old", "new"), ENTRIES, ids=[old for _, old, _ in ENTRIES])
def test_a_moved_entry_points_at_existing_code_and_its_old_path_is_gone(package, old, new):
    assert old.startswith(package + "."), "a package records only moves out of itself"
    hydra.utils.get_object(new)  # a module, or an attribute of one
    try:
        still_there = hydra.utils.get_object(old)
    except ImportError:
        return
    # Only a new package that took an old module's name may stand at an old path (design's `abstractor`
    # stage): the old module's names, missing from the package, still upgrade to the moved module's.
    assert hasattr(still_there, "__path__"), old
    moved = importlib.import_module(new)
    names = [
        n
        for n, v in vars(moved).items()
        if getattr(v, "__module__", None) == new and not hasattr(still_there, n)
    ]
    assert names and all(
        hydra.utils.get_object(upgrade_target(f"{old}.{n}")) is getattr(moved, n) for n in names
    )
