"""The import contracts in pyproject.toml cover the whole tree: a new runner module or a new system is
named in them, so `make lint` checks it (import-linter reports only what the contracts list)."""

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["name"]: contract for contract in config["contracts"]}


def _systems() -> set[str]:
    return {
        path.parent.name
        for layer in ("models", "datamodules")
        for path in (ROOT / layer).glob("*/__init__.py")
        if path.parent.name != "common"
    }


def test_every_runner_module_is_in_the_runner_contract():
    runner = {f"training.{path.stem}" for path in (ROOT / "training").glob("*.py") if path.stem != "__init__"}
    assert set(_contracts()["The runner imports no system"]["source_modules"]) == runner


def test_every_system_has_its_contract_and_is_forbidden_to_the_runner_and_to_the_others():
    contracts = _contracts()
    packages = {f"{layer}.{system}" for system in _systems() for layer in ("models", "datamodules")}
    packages = {package for package in packages if (ROOT / package.replace(".", "/")).is_dir()}
    for name in ("The runner imports no system", "The shared layer imports no system and not the runner"):
        assert packages <= set(contracts[name]["forbidden_modules"]), name
    assert packages == set(contracts["The systems do not import the runner"]["source_modules"])
    for system in _systems():
        own = {package for package in packages if package.endswith(f".{system}")}
        contract = contracts[f"The {system} system imports no other system"]
        assert set(contract["source_modules"]) == own
        assert set(contract["forbidden_modules"]) == packages - own


def test_every_system_s_networks_are_in_the_plain_networks_contract():
    contract = _contracts()["Plain networks import neither Lightning nor any datamodules module"]
    nets = {f"models.{path.parent.parent.name}.nets" for path in (ROOT / "models").glob("*/nets/__init__.py")}
    assert set(contract["source_modules"]) == nets and nets
    assert {"pytorch_lightning", "lightning_fabric", "datamodules"} <= set(contract["forbidden_modules"])
