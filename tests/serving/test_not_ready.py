"""With no trained model the app still starts, says why, and answers predict with 503 model_not_ready."""
import io

import pytest

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
