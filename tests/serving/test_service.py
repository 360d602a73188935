"""DetectionService, the object the API and the CLI share: what it reports and how it picks
its version and threshold."""
import json
import shutil

import pytest

from deepfake_detector.contracts.errors import ImageError, ModelError
from deepfake_detector.serving.service import DetectionService
from deepfake_detector.utils.files import sha256_file
from tests.serving import sample_images
from tests.serving.conftest import serving_config
from tests.tiny_served_model import THRESHOLD


def test_version_is_the_card_source_hash_prefix(service, project):
    card = json.loads((project / "export" / "model_card.json").read_text())
    assert service.model_version == card["source"]["sha256"][:12]
    assert (service.backend, service.variant, service.threshold) == ("tflite", "float32", THRESHOLD)


def test_analyze_raises_image_error_for_bad_bytes(service):
    with pytest.raises(ImageError, match="^scan.png: "):
        service.analyze(b"not an image", "scan.png")


def test_analyze_is_deterministic(service):
    data = sample_images.jpeg(seed=21)
    assert service.analyze(data).fake_probability == service.analyze(data).fake_probability


def test_configured_threshold_wins_over_the_card(project):
    service = DetectionService.from_config(serving_config(project, threshold=0.3), environ={})
    assert service.threshold == 0.3 and service.model_info()["threshold_source"] == "params.yaml serve.threshold"


def test_environment_picks_the_model(project, tmp_path):
    with pytest.raises(ModelError):
        DetectionService.from_config(serving_config(project), environ={
            "DEEPFAKE_DETECTOR_MODEL": str(tmp_path / "none.h5"),
            "DEEPFAKE_DETECTOR_EXPORT_DIR": str(tmp_path / "none")})


def stale_card_project(project, tmp_path, scores: dict) -> DetectionService:
    """model.h5 retrained after the export (the card names another source), with the given scores.json;
    auto serves the Keras model."""
    shutil.copytree(project / "export", tmp_path / "export")
    card_file = tmp_path / "export" / "model_card.json"
    card = json.loads(card_file.read_text())
    card["source"]["sha256"] = "f" * 64
    card["output"]["threshold"] = 0.9
    card_file.write_text(json.dumps(card))
    (tmp_path / "scores.json").write_text(json.dumps(scores))
    shutil.copy(project / "model.h5", tmp_path / "model.h5")
    return DetectionService.from_config(serving_config(tmp_path, backend="auto"), environ={})


def test_a_card_for_another_model_is_not_trusted_for_version_or_threshold(project, tmp_path):
    """The Keras model is served, with its own hash, and the threshold and metrics come from the
    scores.json measured on it, not from the stale card."""
    model_sha = sha256_file(project / "model.h5")
    service = stale_card_project(project, tmp_path, {"threshold": 0.42, "roc_auc": 0.7, "model_sha256": model_sha})
    info = service.model_info()
    assert service.backend == "keras"
    assert service.model_version == model_sha[:12]
    assert (service.threshold, info["threshold_source"]) == (0.42, "scores.json")
    assert info["test_metrics"]["roc_auc"] == 0.7 and info["test_metrics_source"] == "scores.json"
    assert info["training_data_sha256"] is None and info["note"] is None
    assert info["training_data"] == "unknown (no model card describes the served model)" and info["notice"] is None


@pytest.mark.parametrize("recorded", [{"model_sha256": "e" * 64}, {}], ids=["another model", "unrecorded"])
def test_scores_of_another_model_are_not_reported(project, tmp_path, recorded):
    """Neither the card nor scores.json was measured on the served model.h5: the default rule, no
    metrics, and a note that says so."""
    service = stale_card_project(project, tmp_path, {"threshold": 0.42, "roc_auc": 0.7, **recorded})
    info = service.model_info()
    assert (service.threshold, info["threshold_source"]) == (0.5, "default")
    assert info["test_metrics"] is None and info["test_metrics_source"] is None
    assert "no evaluation matches the served model" in info["note"]


def test_card_temperature_calibrates_served_probabilities_and_keeps_decisions(project, tmp_path):
    """The evaluate stage's temperature, recorded in the card, is applied to every P(fake) served."""
    from deepfake_detector.contracts.temperature import apply_temperature

    shutil.copytree(project / "export", tmp_path / "export")
    shutil.copy(project / "model.h5", tmp_path / "model.h5")
    card_file = tmp_path / "export" / "model_card.json"
    card = json.loads(card_file.read_text())
    card["output"] = {"temperature": 2.5, "threshold": float(apply_temperature(THRESHOLD, 2.5))}
    card_file.write_text(json.dumps(card))
    plain = DetectionService.from_config(serving_config(project), environ={})
    calibrated = DetectionService.from_config(serving_config(tmp_path), environ={})
    assert calibrated.model_info()["temperature"] == 2.5 and plain.model_info()["temperature"] == 1.0
    for seed in (3, 4, 5):
        data = sample_images.jpeg(seed=seed)
        before, after = plain.analyze(data), calibrated.analyze(data)
        assert after.fake_probability == pytest.approx(float(apply_temperature(before.fake_probability, 2.5)),
                                                       abs=1e-6)
        assert after.label == before.label


def test_configured_threshold_keeps_the_cards_temperature(project, tmp_path):
    shutil.copytree(project / "export", tmp_path / "export")
    card_file = tmp_path / "export" / "model_card.json"
    card = json.loads(card_file.read_text())
    card["output"] = {"temperature": 2.5, "threshold": 0.6}
    card_file.write_text(json.dumps(card))
    service = DetectionService.from_config(serving_config(tmp_path, threshold=0.3), environ={})
    assert (service.rule.threshold, service.rule.temperature, service.rule.source) == (
        0.3, 2.5, "params.yaml serve.threshold")
    assert service.predictor.rule is service.rule  # one rule per process, held by the predictor
