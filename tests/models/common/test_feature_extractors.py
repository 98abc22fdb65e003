"""Choosing the FID/KID feature extractor from config: Inception only from local weights, clear errors."""

from __future__ import annotations

import pytest

from models.common import feature_extractors
from models.common.feature_extractors import ImageFeatures, InceptionFeatures, select_feature_extractor
from training.toolkit.errors import UserError


class Trained(ImageFeatures):
    name = "trained"
    num_features = 4


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
    with pytest.raises(UserError, match=r"model\.quality\.feature=clip .* inception, design"):
        select_feature_extractor(
            "clip", inception_weights=None, trained={"design": Trained}, config_key="model.quality"
        )


def test_inception_without_a_weights_path_names_the_key_and_the_file_to_get():
    with pytest.raises(
        UserError, match=r"model\.quality\.inception_weights=PATH.*weights-inception-2015-12-05"
    ):
        select_feature_extractor(
            "inception", inception_weights=None, trained={"design": Trained}, config_key="model.quality"
        )


def test_inception_without_torch_fidelity_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(feature_extractors, "has_torch_fidelity", lambda: False)
    with pytest.raises(UserError, match=r"q\.inception_weights: .*pip install torch-fidelity"):
        InceptionFeatures(tmp_path / "weights.pth", key="q.inception_weights")


def test_inception_with_a_missing_weights_file_names_the_path_and_the_download(monkeypatch, tmp_path):
    monkeypatch.setattr(feature_extractors, "has_torch_fidelity", lambda: True)
    missing = tmp_path / "weights.pth"
    with pytest.raises(
        UserError, match=rf"q\.inception_weights={missing}: no Inception weights.*6726825d\.pth"
    ):
        select_feature_extractor("inception", inception_weights=missing, trained={}, config_key="q")
