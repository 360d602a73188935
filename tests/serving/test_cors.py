"""CORS: no origin is allowed unless configured, only the configured ones then, never '*' by default."""
import pytest

ORIGIN = "https://detector.example.org"


def preflight(client, path, origin):
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": "POST"})


@pytest.fixture(scope="module")
def cors_client(make_app):
    return make_app(cors_origins=(ORIGIN,)).test_client()


def test_no_origin_is_allowed_by_default(client):
    response = client.get("/api/v1/model", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Origin" not in preflight(client, "/api/v1/predict", ORIGIN).headers


@pytest.mark.parametrize("path", ["/api/v1/predict", "/predict"])
def test_configured_origin_is_allowed_on_the_api_and_legacy_predict(cors_client, path):
    response = preflight(cors_client, path, ORIGIN)
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_other_origins_are_refused(cors_client):
    response = cors_client.get("/api/v1/model", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_does_not_cover_the_page(cors_client):
    assert "Access-Control-Allow-Origin" not in cors_client.get("/", headers={"Origin": ORIGIN}).headers


def test_origins_come_from_the_environment_too(make_app):
    client = make_app(environ={"DEEPFAKE_DETECTOR_CORS_ORIGINS": f"{ORIGIN}, https://b.example"}).test_client()
    response = client.get("/api/v1/model", headers={"Origin": "https://b.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://b.example"
