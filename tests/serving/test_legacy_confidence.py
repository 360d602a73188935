"""The legacy POST /predict's confidence agrees with its verdict and never falls below 50 %, at any threshold;
/api/v1/predict keeps reporting P(fake) and the threshold themselves."""
import base64

import numpy as np
import pytest

from deepfake_detector.serving.app_factory import create_app
from deepfake_detector.serving.legacy import legacy_confidence
from deepfake_detector.serving.service import DetectionService
from tests.serving import sample_images
from tests.serving.conftest import serving_config

THRESHOLDS = [0.01, 0.2, 0.5, 0.6644, 0.9, 0.99]


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_the_threshold_is_50_percent_and_the_ends_are_100(threshold):
    assert legacy_confidence(threshold, threshold) == pytest.approx(0.5)
    assert legacy_confidence(0.0, threshold) == pytest.approx(1.0)
    assert legacy_confidence(1.0, threshold) == pytest.approx(1.0)


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_confidence_never_falls_below_half_and_grows_away_from_the_threshold(threshold):
    p_fake = np.linspace(0.0, 1.0, 2001)
    confidence = np.array([legacy_confidence(p, threshold) for p in p_fake])
    assert confidence.min() >= 0.5 and confidence.max() <= 1.0
    # As P(fake) rises the "Real" confidence falls to 50 % at the threshold, then the "Fake" one rises.
    real, fake = p_fake < threshold, p_fake >= threshold
    assert np.all(np.diff(confidence[real]) < 0) and np.all(np.diff(confidence[fake]) > 0)


def test_the_issues_example_is_real_at_more_than_half():
    """Threshold 0.8, P(fake) 0.6: "Real", and not at 40 % as 1 - P(fake) said."""
    assert legacy_confidence(0.6, 0.8) == pytest.approx(0.5 + 0.5 * 0.2 / 0.8)
    assert legacy_confidence(0.9, 0.8) == pytest.approx(0.75)


@pytest.mark.parametrize("p_fake", [0.0, 0.13, 0.5, 0.77, 1.0])
def test_at_threshold_half_it_is_the_original_answer(p_fake):
    assert legacy_confidence(p_fake, 0.5) == pytest.approx(max(p_fake, 1.0 - p_fake))


@pytest.mark.parametrize("case", ["real below a high threshold", "fake just above the threshold"])
def test_legacy_route_agrees_with_the_verdict_and_the_api_keeps_p_fake(project, service, templates_dir, case):
    image = sample_images.jpeg(seed=11)
    p_fake = service.analyze(image).fake_probability
    # Halfway between this image's P(fake) and 1: a "Real" that 1 - P(fake) reported under 50 % whenever
    # P(fake) > 0.5. Or a hair under it: a "Fake" at 50 %, which P(fake) reported as anything above 0.
    real = case.startswith("real")
    threshold = round((p_fake + 1.0) / 2.0, 6) if real else p_fake - 1e-7
    high = DetectionService.from_config(serving_config(project, threshold=threshold), environ={})
    client = create_app(high.config, root=project, environ={}, service=high, template_folder=templates_dir,
                        retry_interval_s=None).test_client()
    body = {"image": base64.b64encode(image).decode()}

    [legacy] = client.post("/predict", json=body).get_json()
    api = client.post("/api/v1/predict", json=body).get_json()
    [result] = api["results"]
    assert result["fake_probability"] == pytest.approx(p_fake, abs=1e-9)
    assert api["threshold"] == result["threshold"] == threshold
    assert (legacy["image"], result["label"]) == (("Real", "real") if real else ("Fake", "fake"))
    assert legacy["confidence"] == f"{legacy_confidence(p_fake, threshold) * 100:.2f}%"
    assert float(legacy["confidence"].rstrip("%")) >= 50.0
    if not real:
        assert legacy["confidence"] == "50.00%"
