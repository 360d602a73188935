"""The served model is fed as it was trained: the model card's input fit (crop or resize) decides what the
predictor sees, and the answer says which part of the image was scored."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from deepfake_detector.contracts.errors import ModelError
from deepfake_detector.inference.images import decode_image, fit_for_model
from deepfake_detector.serving.service import DetectionService
from tests.serving import sample_images
from tests.serving.conftest import serving_config


def project_with_fit(project, tmp_path, fit):
    """A copy of the session's project whose card records `fit` (None: a card from before the choice)."""
    shutil.copytree(project / "export", tmp_path / "export")
    for name in ("model.h5", "scores.json"):
        shutil.copy(project / name, tmp_path / name)
    card_file = tmp_path / "export" / "model_card.json"
    card = json.loads(card_file.read_text())
    if fit is not None:
        card["input"] = {"fit": fit}
    card_file.write_text(json.dumps(card))
    return tmp_path


@pytest.fixture(scope="module")
def cropping_service(project, tmp_path_factory):
    root = project_with_fit(project, tmp_path_factory.mktemp("crop_project"), "crop")
    return DetectionService.from_config(serving_config(root), environ={})


def test_a_crop_model_scores_the_center_square_at_native_resolution(cropping_service):
    data = sample_images.jpeg(width=200, height=120, seed=7)
    size = cropping_service.image_size
    analysis = cropping_service.analyze(data, explain=True)
    pixels = decode_image(data)
    top, left = (120 - size) // 2, (200 - size) // 2
    center = pixels[top:top + size, left:left + size].astype(np.float32)
    expected = float(cropping_service.predictor.predict(center[None])[0])
    assert analysis.fake_probability == pytest.approx(expected, abs=1e-6)
    assert analysis.scored_region == "center"
    assert analysis.heatmap.box.as_list() == [left, top, size, size]
    assert analysis.as_api_dict()["scored_region"] == "center"


def test_a_crop_model_enlarges_an_image_smaller_than_its_input(cropping_service):
    size = cropping_service.image_size
    data = sample_images.jpeg(width=size - 8, height=size + 20, seed=8)
    analysis = cropping_service.analyze(data)
    expected = float(cropping_service.predictor.predict(fit_for_model(decode_image(data), size, "resize")[None])[0])
    assert analysis.fake_probability == pytest.approx(expected, abs=1e-6)
    assert analysis.scored_region == "whole_image"


def test_a_card_from_before_the_choice_means_resize(service):
    data = sample_images.jpeg(width=200, height=120, seed=7)
    analysis = service.analyze(data)
    size = service.image_size
    expected = float(service.predictor.predict(fit_for_model(decode_image(data), size, "resize")[None])[0])
    assert service.predictor.input_fit == "resize"
    assert analysis.fake_probability == pytest.approx(expected, abs=1e-6)
    assert analysis.scored_region == "whole_image"


def test_predict_image_follows_the_card(cropping_service):
    data = sample_images.jpeg(width=150, height=150, seed=9)
    predictor = cropping_service.predictor
    size = cropping_service.image_size
    expected = float(predictor.predict(fit_for_model(decode_image(data), size, "crop")[None])[0])
    assert predictor.predict_image(data) == pytest.approx(expected, abs=1e-6)


def test_an_unknown_fit_in_the_card_is_refused_with_the_file_named(project, tmp_path):
    root = project_with_fit(project, tmp_path, "zoom")
    with pytest.raises(ModelError, match=r"model_card\.json.*input\.fit must be one of crop, resize"):
        DetectionService.from_config(serving_config(root), environ={})
