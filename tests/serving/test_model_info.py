"""/api/v1/model describes the model actually served: an export is described by its own card, even when
scores.json has moved on to a newer model (retrained, not re-exported), and its answers decide by the
card's threshold."""
from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from deepfake_detector.serving.app_factory import create_app
from deepfake_detector.utils.files import sha256_file
from tests.serving import sample_images
from tests.serving.conftest import TEST_METRICS, serving_config

NEWER_SCORES = {"accuracy": 0.99, "roc_auc": 0.999, "n_test": 500}


def retrained_project(project: Path, root: Path, card_threshold: float, scores_threshold: float,
                      keep_model_file: bool) -> Path:
    """The session's export and card (threshold card_threshold), beside a scores.json of a newer model.h5
    with other metrics and threshold; model.h5 is that newer model, or absent as in the serving image."""
    shutil.copytree(project / "export", root / "export")
    card_file = root / "export" / "model_card.json"
    card = json.loads(card_file.read_text())
    card["output"]["threshold"] = card_threshold
    card_file.write_text(json.dumps(card))
    newer_sha = "e" * 64
    if keep_model_file:
        (root / "model.h5").write_bytes(b"a retrained model, not exported yet")
        newer_sha = sha256_file(root / "model.h5")
    scores = {**NEWER_SCORES, "threshold": scores_threshold, "model_sha256": newer_sha}
    (root / "scores.json").write_text(json.dumps(scores))
    return root


@pytest.mark.parametrize(("backend", "keep_model_file"), [("tflite", True), ("auto", False)],
                         ids=["tflite beside a retrained model.h5", "auto with only the export"])
def test_served_export_is_described_by_its_card_not_by_newer_scores(project, service, templates_dir, tmp_path,
                                                                    backend, keep_model_file):
    image = sample_images.jpeg(seed=9)
    p_fake = service.analyze(image).fake_probability
    # Thresholds on either side of this image's score: only the card's calls it fake.
    card_threshold, scores_threshold = round(p_fake - 0.05, 6), round(p_fake + 0.05, 6)
    root = retrained_project(project, tmp_path, card_threshold, scores_threshold, keep_model_file)
    app = create_app(serving_config(root, backend=backend), root=root, environ={}, template_folder=templates_dir,
                     retry_interval_s=None)
    client = app.test_client()

    info = client.get("/api/v1/model").get_json()
    assert info["backend"] == "tflite"
    assert (info["threshold"], info["threshold_source"]) == (card_threshold, "model_card.json")
    assert info["test_metrics"] == TEST_METRICS and info["test_metrics_source"] == "model_card.json"
    assert info["note"] is None and "float32" in info["exports"]

    body = client.post("/api/v1/predict", json={"image": base64.b64encode(image).decode()}).get_json()
    [result] = body["results"]
    assert body["threshold"] == result["threshold"] == card_threshold
    assert result["fake_probability"] == pytest.approx(p_fake, abs=1e-9) and result["label"] == "fake"

