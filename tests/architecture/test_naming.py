"""One naming rule, so a reader knows what a class is from its name and a file from its path: a
LightningModule is `<Name>Model` in a `module.py`/`*_module.py`, a LightningDataModule `<Name>DM` in a
`datamodule.py`/`*_datamodule.py` (the seed's MultiDatasetModel and MultiDatasetDM), and no other class
uses either suffix."""

import importlib
import inspect
import pkgutil

import pytest
import pytorch_lightning as pl

import datamodules
import models


def _classes():
    for package in (models, datamodules):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if info.name.endswith("__main__"):
                continue
            module = importlib.import_module(info.name)
            for name, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ == info.name:
                    yield info.name, name, cls


CLASSES = list(_classes())


def test_the_tree_has_lightning_modules_and_datamodules_to_judge():
    kinds = {issubclass(cls, pl.LightningModule) for _, _, cls in CLASSES}
    assert kinds == {True, False} and any(issubclass(c, pl.LightningDataModule) for _, _, c in CLASSES)


@pytest.mark.parametrize(("module", "name", "cls"), CLASSES, ids=[f"{m}.{n}" for m, n, _ in CLASSES])
def test_a_class_name_and_its_file_say_what_it_is(module, name, cls):
    leaf = module.rsplit(".", 1)[1]
    if issubclass(cls, pl.LightningModule):
        assert name.endswith("Model") and (leaf == "module" or leaf.endswith("_module")), (module, name)
    elif issubclass(cls, pl.LightningDataModule):
        assert name.endswith("DM") and (leaf == "datamodule" or leaf.endswith("_datamodule")), (module, name)
    else:
        assert not name.endswith(("Model", "DM")), (
            f"{module}.{name} is neither a LightningModule nor a DataModule"
        )
