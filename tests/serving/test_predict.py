"""POST /api/v1/predict and the legacy POST /predict on good input."""
import base64
import io

import numpy as np
import pytest
from PIL import Image

from tests.serving import sample_images

RESULT_KEYS = {"filename", "label", "fake_probability", "threshold", "model_version", "backend", "width", "height",
               "scored_region", "faces", "timings_ms"}


def multipart(*files, **fields):
    return {"file": [(io.BytesIO(data), name) for name, data in files], **fields}


def test_multipart_upload_gets_one_result_with_every_field(client, service):
    response = client.post("/api/v1/predict", data=multipart(("a.jpg", sample_images.jpeg())))
    assert response.status_code == 200
    body = response.get_json()
    assert (body["model_version"], body["backend"], body["variant"], body["threshold"]) == (
        service.model_version, "tflite", "float32", service.threshold)
    [result] = body["results"]
    assert RESULT_KEYS <= set(result) and "heatmap" not in result
    assert result["filename"] == "a.jpg"
    assert (result["width"], result["height"]) == (96, 64)
    assert 0.0 <= result["fake_probability"] <= 1.0
    assert result["label"] == ("fake" if result["fake_probability"] >= result["threshold"] else "real")
    assert result["scored_region"] == "whole_image" and result["faces"] == []
    assert set(result["timings_ms"]) == {"decode", "faces", "predict", "explain", "total"}


def test_answer_matches_the_service_directly(client, service):
    data = sample_images.jpeg(seed=3)
    result = client.post("/api/v1/predict", data=multipart(("x.jpg", data))).get_json()["results"][0]
    assert result["fake_probability"] == pytest.approx(service.analyze(data).fake_probability, abs=1e-9)


@pytest.mark.parametrize("content_type", ["image/jpeg", "image/png", "application/octet-stream"])
def test_raw_body_scores_like_the_multipart_upload(client, content_type):
    data = sample_images.jpeg(seed=5)
    as_form = client.post("/api/v1/predict", data=multipart(("x.jpg", data))).get_json()["results"][0]
    response = client.post("/api/v1/predict?filename=holiday.jpg", data=data, content_type=content_type)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    [result] = response.get_json()["results"]
    assert result["filename"] == "holiday.jpg"
    assert result["fake_probability"] == pytest.approx(as_form["fake_probability"], abs=1e-9)


def test_raw_body_without_a_filename_is_called_image_and_can_be_explained(client):
    response = client.post("/api/v1/predict?explain=true", data=sample_images.jpeg(), content_type="image/jpeg")
    [result] = response.get_json()["results"]
    assert result["filename"] == "image" and "heatmap" in result


def test_several_files_get_one_result_each_in_order(client):
    files = [(f"{i}.png", sample_images.png(seed=i)) for i in range(3)]
    results = client.post("/api/v1/predict", data=multipart(*files)).get_json()["results"]
    assert [r["filename"] for r in results] == ["0.png", "1.png", "2.png"]


def test_json_base64_with_and_without_data_url_prefix(client):
    data = sample_images.jpeg(seed=5)
    plain = base64.b64encode(data).decode()
    first = client.post("/api/v1/predict", json={"image": plain}).get_json()["results"][0]
    second = client.post("/api/v1/predict", json={"image": "data:image/jpeg;base64," + plain}).get_json()["results"][0]
    assert first["fake_probability"] == second["fake_probability"]


def test_json_images_list(client):
    images = [base64.b64encode(sample_images.png(seed=i)).decode() for i in range(2)]
    results = client.post("/api/v1/predict", json={"images": images}).get_json()["results"]
    assert len(results) == 2


def test_too_many_images_is_413(client):
    files = [(f"{i}.png", sample_images.png(seed=i)) for i in range(5)]  # the tests' limit is 4
    response = client.post("/api/v1/predict", data=multipart(*files))
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_many_images"


@pytest.mark.parametrize("how", ["query", "form"])
def test_explain_returns_a_decodable_rgba_png_heatmap_with_its_box(client, how):
    query = "?explain=true" if how == "query" else ""
    fields = {"explain": "true"} if how == "form" else {}
    response = client.post("/api/v1/predict" + query, data=multipart(("a.jpg", sample_images.jpeg()), **fields))
    heatmap = response.get_json()["results"][0]["heatmap"]
    assert heatmap["method"] in ("grad-cam", "occlusion")
    assert heatmap["box"] == [0, 0, 96, 64]
    prefix = "data:image/png;base64,"
    assert heatmap["png"].startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(heatmap["png"][len(prefix):])))
    assert image.format == "PNG" and image.mode == "RGBA"
    alpha = np.asarray(image)[..., 3]
    assert alpha.max() <= round(0.6 * 255)


def test_explain_false_is_the_fast_path_without_heatmap(client):
    result = client.post("/api/v1/predict?explain=false",
                         data=multipart(("a.jpg", sample_images.jpeg()))).get_json()["results"][0]
    assert "heatmap" not in result and result["timings_ms"]["explain"] == 0.0


def test_legacy_predict_keeps_the_original_contract(client, service):
    data = sample_images.jpeg(seed=7)
    response = client.post("/predict", json={"image": base64.b64encode(data).decode()})
    assert response.status_code == 200
    [answer] = response.get_json()
    assert set(answer) == {"image", "confidence"}
    p_fake = service.analyze(data).fake_probability
    expected_class = "Fake" if p_fake >= service.threshold else "Real"
    expected_confidence = p_fake if expected_class == "Fake" else 1 - p_fake
    assert answer["image"] == expected_class
    assert answer["confidence"] == f"{expected_confidence * 100:.2f}%"


def test_legacy_predict_errors_are_json_too(client):
    response = client.post("/predict", json={"img": "x"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "missing_image"
