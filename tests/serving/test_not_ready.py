"""With no trained model, or one whose decision rule cannot be applied, the app still starts, says why,
and answers predict with 503 model_not_ready."""
import io
import json
import shutil

import pytest

from deepfake_detector.utils.files import sha256_file
from tests.serving import sample_images


@pytest.fixture(scope="module")
def empty_client(make_app, tmp_path_factory):
    nothing = tmp_path_factory.mktemp("no_model")
    app = make_app(load_model=True, backend="auto", model_file=nothing / "model.h5", export_dir=nothing / "export")
    return app.test_client()


def test_app_starts_and_is_alive(empty_client):
    assert empty_client.get("/healthz").status_code == 200


def test_readiness_is_503_with_a_json_reason(empty_client):
    response = empty_client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not_ready"
    assert body["error"]["code"] == "model_not_ready"
    assert "model.h5" in body["reason"]


def test_predict_is_503_model_not_ready(empty_client):
    response = empty_client.post("/api/v1/predict", data={"file": (io.BytesIO(sample_images.jpeg()), "a.jpg")})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "model_not_ready"


def test_legacy_predict_and_model_info_are_503_too(empty_client):
    assert empty_client.post("/predict", json={"image": "AAAA"}).get_json()["error"]["code"] == "model_not_ready"
    assert empty_client.get("/api/v1/model").status_code == 503


def test_page_still_renders_without_a_model(empty_client):
    assert empty_client.get("/").status_code == 200


def project_with_card_threshold(project, root, threshold):
    """A copy of the session's project whose model card records threshold (model.h5 beside it)."""
    shutil.copytree(project, root, dirs_exist_ok=True)
    card_file = root / "export" / "model_card.json"
    card = json.loads(card_file.read_text())
    card["output"]["threshold"] = threshold
    card_file.write_text(json.dumps(card))
    return root


@pytest.mark.parametrize("backend", ["auto", "keras", "tflite"])
def test_a_card_rule_that_cannot_be_honored_means_not_ready_with_the_reason(make_app, project, tmp_path, backend):
    """Not a silent fallback to 0.5, nor to the Keras model with a default rule."""
    root = project_with_card_threshold(project, tmp_path, 1.0)
    client = make_app(load_model=True, backend=backend, model_file=root / "model.h5", export_dir=root / "export",
                      scores_file=root / "scores.json").test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    reason = ready.get_json()["reason"]
    assert "model_card.json" in reason and "strictly between 0 and 1, got 1.0" in reason
    refused = client.post("/api/v1/predict", data={"file": (io.BytesIO(sample_images.jpeg()), "a.jpg")})
    assert refused.status_code == 503
    assert refused.get_json()["error"] == {"code": "model_not_ready", "message": reason}


def test_malformed_scores_of_a_model_without_card_mean_not_ready(make_app, project, tmp_path):
    shutil.copy(project / "model.h5", tmp_path / "model.h5")
    (tmp_path / "scores.json").write_text(json.dumps({"threshold": 0.0, "temperature": 1.0,
                                                      "model_sha256": sha256_file(tmp_path / "model.h5")}))
    client = make_app(load_model=True, backend="auto", model_file=tmp_path / "model.h5",
                      export_dir=tmp_path / "no_export", scores_file=tmp_path / "scores.json").test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "scores.json" in ready.get_json()["reason"] and "got 0.0" in ready.get_json()["reason"]
