"""Every route answers, errors are JSON of one shape, and every route is in the OpenAPI document."""
import re

from tests.serving.conftest import MANIFEST_SHA256
from tests.tiny_served_model import IMAGE_SIZE, THRESHOLD


def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_200_with_a_model(client, service):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["model_version"] == service.model_version


def test_model_metadata_names_version_backend_threshold_metrics_and_data(client, service):
    info = client.get("/api/v1/model").get_json()
    assert info["model_version"] == service.model_version and len(info["model_version"]) == 12
    assert (info["backend"], info["variant"], info["input_size"]) == ("tflite", "float32", IMAGE_SIZE)
    assert info["threshold"] == THRESHOLD
    assert info["test_metrics"]["roc_auc"] == 0.8
    assert info["training_data_sha256"] == MANIFEST_SHA256
    assert info["architecture"]["backbone"] == "MobileNetV2"
    assert "float32" in info["exports"]


def test_index_page_renders(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"


def test_static_files_come_from_the_top_level_static_folder(app, client):
    assert app.static_folder.endswith("static")
    response = client.get("/static/does-not-exist.css")
    assert response.status_code == 404


def test_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_wrong_method_is_a_json_405_with_allow(client):
    response = client.get("/api/v1/predict")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_there_is_no_get_train(client):
    assert client.get("/train").status_code == 404


def test_request_id_is_echoed_when_sane(client):
    response = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"


def test_request_id_is_generated_when_missing_or_odd(client):
    generated = client.get("/healthz").headers["X-Request-ID"]
    replaced = client.get("/healthz", headers={"X-Request-ID": "bad id\u2028"}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated) and re.fullmatch(r"[0-9a-f]{32}", replaced)


def test_openapi_lists_every_route_and_the_error_schema(make_app):
    app = make_app(training_enabled=True)
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    assert "Error" in document["components"]["schemas"]
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        assert path in document["paths"], f"{rule.rule} is not documented"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in document["paths"][path], f"{method} {rule.rule} is not documented"
