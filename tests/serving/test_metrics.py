"""/metrics: requests, latency, refusals, decode and inference time, served P(fake) and the fake rate move with
the traffic; only loopback clients or bearers of the metrics token may read them; a real gunicorn with two
workers reports the requests of both."""
import base64
import io
import os
import re
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from deepfake_detector.contracts.errors import ConfigError
from deepfake_detector.serving.metrics import MULTIPROCESS_DIR_ENV, ServingMetrics
from deepfake_detector.serving.settings import repository_root
from tests.servers import start_server
from tests.serving import sample_images

REMOTE = {"REMOTE_ADDR": "203.0.113.9"}
TOKEN = "s3cret-metrics-token"
REQUESTS = "deepfake_detector_http_requests_total"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape, keyed by name and labels."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def scrape(client, **options) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics", **options)
    assert response.status_code == 200, response.get_data(as_text=True)
    return samples(response.get_data(as_text=True))


def value(scraped: dict, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


def upload(*images: bytes) -> dict:
    return {"file": [(io.BytesIO(data), f"{index}.jpg") for index, data in enumerate(images)]}


@pytest.fixture
def client(make_app):
    """A fresh app per test, so that its metrics start at zero."""
    return make_app().test_client()


def test_requests_are_counted_by_route_and_status(client):
    client.get("/healthz")
    client.get("/healthz")
    client.post("/api/v1/predict", data=upload(sample_images.truncated_jpeg()))
    scraped = scrape(client)
    assert value(scraped, REQUESTS, route="/healthz", status="200") == 2
    assert value(scraped, REQUESTS, route="/api/v1/predict", status="400") == 1
    assert value(scraped, "deepfake_detector_http_request_duration_seconds_count", route="/healthz",
                 status="200") == 2


def test_the_route_label_is_the_url_rule_never_the_path(client):
    client.get("/static/first-missing.css")
    client.get("/static/second-missing.css")
    client.get("/no/such/page")
    scraped = scrape(client)
    assert value(scraped, REQUESTS, route="/static/<path:filename>", status="404") == 2
    assert value(scraped, REQUESTS, route="<unmatched>", status="404") == 1
    routes = {dict(labels).get("route") for _, labels in scraped}
    assert not any("missing" in route or "no/such" in route for route in routes if route)


def test_scrapes_are_not_counted_as_traffic(client):
    client.get("/metrics")
    assert not any(name == REQUESTS for name, _ in scrape(client))


def test_a_prediction_fills_the_decode_inference_and_probability_histograms(client):
    answer = client.post("/api/v1/predict", data=upload(sample_images.jpeg(seed=4))).get_json()
    scraped = scrape(client)
    for histogram in ("decode_duration_seconds", "inference_duration_seconds", "fake_probability"):
        assert value(scraped, f"deepfake_detector_{histogram}_count") == 1
    assert value(scraped, "deepfake_detector_decode_duration_seconds_sum") > 0
    assert value(scraped, "deepfake_detector_fake_probability_sum") == pytest.approx(
        answer["results"][0]["fake_probability"])


def test_the_fake_rate_counters_follow_the_served_verdicts(client):
    images = [sample_images.jpeg(64 + 16 * seed, 64, seed=seed) for seed in range(8)] + [sample_images.png(seed=9)]
    labels = []
    for start in range(0, len(images), 3):
        answer = client.post("/api/v1/predict", data=upload(*images[start:start + 3])).get_json()
        labels += [result["label"] for result in answer["results"]]
    client.post("/predict", json={"image": base64.b64encode(images[0]).decode()})
    labels.append(labels[0])
    assert 0 < labels.count("fake") < len(labels), "the tiny model should call some of these fake, some real"
    scraped = scrape(client)
    assert value(scraped, "deepfake_detector_verdicts_total") == len(labels)
    assert value(scraped, "deepfake_detector_fake_verdicts_total") == labels.count("fake")


def test_refusals_are_counted_by_reason(make_app, client):
    client.post("/api/v1/predict", data=upload(*[sample_images.jpeg()] * 5))  # at most 4 per request
    client.post("/api/v1/predict", data=b"x" * (3 * 1024 * 1024), content_type="application/octet-stream")
    client.post("/api/v1/predict", data=upload(sample_images.truncated_jpeg()))  # a bad image: not a refusal
    scraped = scrape(client)
    assert value(scraped, "deepfake_detector_rejected_requests_total", reason="too_many_images") == 1
    assert value(scraped, "deepfake_detector_rejected_requests_total", reason="request_too_large") == 1
    assert sum(v for (name, _), v in scraped.items() if name == "deepfake_detector_rejected_requests_total") == 2


def test_requests_to_an_app_without_a_model_count_as_not_ready(make_app, tmp_path):
    empty = make_app(load_model=True, backend="auto", model_file=tmp_path / "model.h5",
                     export_dir=tmp_path / "export").test_client()
    empty.post("/api/v1/predict", data=upload(sample_images.jpeg()))
    assert empty.get("/readyz").status_code == 503  # a probe's answer, not a refusal
    assert value(scrape(empty), "deepfake_detector_rejected_requests_total", reason="model_not_ready") == 1


def test_in_flight_counts_requests_being_answered(make_app):
    app = make_app()
    started, release = threading.Event(), threading.Event()

    @app.get("/test-hold")
    def hold():
        started.set()
        release.wait(10)
        return "done"

    client = app.test_client()
    waiting = threading.Thread(target=client.get, args=("/test-hold",))
    waiting.start()
    try:
        assert started.wait(10)
        assert value(scrape(client), "deepfake_detector_http_requests_in_flight") == 1
    finally:
        release.set()
        waiting.join(10)
    assert value(scrape(client), "deepfake_detector_http_requests_in_flight") == 0


def test_model_version_variant_and_backend_are_an_info_metric(client, service):
    scraped = scrape(client)
    assert value(scraped, "deepfake_detector_model_info", version=service.model_version, variant="float32",
                 backend="tflite") == 1


def test_a_remote_client_without_a_token_is_refused(client):
    response = client.get("/metrics", environ_base=REMOTE)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"


def test_a_request_forwarded_by_a_local_proxy_is_not_a_loopback_client(client):
    assert client.get("/metrics", headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 403


def test_with_a_token_a_scrape_without_it_is_401(make_app):
    client = make_app(environ={"DEEPFAKE_DETECTOR_METRICS_TOKEN": TOKEN}).test_client()
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_with_a_token_a_wrong_one_is_403(make_app):
    client = make_app(environ={"DEEPFAKE_DETECTOR_METRICS_TOKEN": TOKEN}).test_client()
    response = client.get("/metrics", headers={"Authorization": "Bearer wrong"}, environ_base=REMOTE)
    assert response.status_code == 403


def test_with_a_token_the_right_one_is_served_to_any_client(make_app):
    client = make_app(environ={"DEEPFAKE_DETECTOR_METRICS_TOKEN": TOKEN}).test_client()
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, environ_base=REMOTE)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "deepfake_detector_model_info" in response.get_data(as_text=True)


def test_a_scrape_that_cannot_be_collected_is_503_not_500(client, monkeypatch):
    def broken(self, accept):
        raise OSError("a metrics file is unreadable")

    monkeypatch.setattr(ServingMetrics, "exposition", broken)
    response = client.get("/metrics")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "metrics_unavailable"


def test_a_multiprocess_folder_that_does_not_exist_is_a_config_error(monkeypatch, tmp_path):
    monkeypatch.setenv(MULTIPROCESS_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=MULTIPROCESS_DIR_ENV):
        ServingMetrics.for_this_process()


@pytest.mark.slow
def test_gunicorn_workers_all_report_into_one_scrape(project, tmp_path):
    """Requests spread over two workers are all counted, whichever worker answers the scrape, and the metrics
    folder made for this start is gone after it stops."""
    environment = {key: value for key, value in os.environ.items() if key != MULTIPROCESS_DIR_ENV}
    environment.update({"DEEPFAKE_DETECTOR_MODEL": str(project / "model.h5"),
                        "DEEPFAKE_DETECTOR_EXPORT_DIR": str(project / "export"), "DEEPFAKE_DETECTOR_BACKEND": "tflite"})
    command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--bind", "127.0.0.1:0",
               "--workers", "2", "--threads", "2"]
    if "--no-control-socket" in subprocess.run([sys.executable, "-m", "gunicorn", "--help"], capture_output=True,
                                               text=True).stdout:
        command.append("--no-control-socket")
    server = start_server(command, tmp_path / "gunicorn.log", env=environment, cwd=repository_root())
    try:
        server.wait_for("/readyz", timeout_s=120)
        folder = Path(re.search(r"metrics of all workers are kept in ([^\"\s]+)", server.log()).group(1))
        sent = 0
        with ThreadPoolExecutor(max_workers=8) as pool:
            while sent < 400 and len(_healthz_counts_by_worker(folder)) < 2:
                statuses = list(pool.map(lambda _: requests.get(f"{server.base_url}/healthz", timeout=10).status_code,
                                         range(40)))
                assert statuses == [200] * 40
                sent += 40
        per_worker = _healthz_counts_by_worker(folder)
        assert len(per_worker) == 2, f"all {sent} requests went to one worker"
        for _ in range(4):  # each scrape may land on either worker: every one sees the total
            scraped = samples(requests.get(f"{server.base_url}/metrics", timeout=10).text)
            assert value(scraped, REQUESTS, route="/healthz", status="200") == sent == sum(per_worker.values())
    finally:
        server.stop()
    assert not folder.exists()


def _healthz_counts_by_worker(folder: Path) -> dict[str, float]:
    """The /healthz count each worker's own counter file holds, for the workers that served any."""
    counts = {}
    for path in folder.glob("counter_*.db"):
        for family in MultiProcessCollector.merge([str(path)]):
            for sample in family.samples:
                if sample.name == REQUESTS and sample.labels.get("route") == "/healthz" and sample.value:
                    counts[path.stem] = sample.value
    return counts
