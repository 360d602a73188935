"""Admission control in one app: predictions beyond the worker's slots or past their deadline get 503 with
Retry-After at once, health checks never wait for a slot, a slot comes back after every answer, and each refusal is
counted in /metrics by its reason."""
import io
import threading
import time

import pytest

from deepfake_detector.serving.admission import Admission
from deepfake_detector.serving.app_factory import create_app
from tests.serving import sample_images
from tests.serving.conftest import serving_config
from tests.serving.test_metrics import scrape, value

JPEG = sample_images.jpeg(64, 64, seed=5)
REJECTED = "deepfake_detector_rejected_requests_total"


class SlowService:
    """The session's service, whose analyze() waits until released (or sleeps), counting its calls."""

    def __init__(self, service, sleep_s: float = 0.0):
        self._service = service
        self.sleep_s = sleep_s
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def analyze(self, *args, **kwargs):
        self.calls += 1
        self.started.set()
        if self.sleep_s:
            time.sleep(self.sleep_s)
        else:
            assert self.release.wait(30), "the test never released the request"
        return self._service.analyze(*args, **kwargs)

    def analyze_upload(self, *args, **kwargs):
        return self.analyze(*args, **kwargs)  # these tests send images only

    def __getattr__(self, name):
        return getattr(self._service, name)


@pytest.fixture
def slow_app(project, templates_dir, service):
    def make(sleep_s: float = 0.0, **overrides):
        slow = SlowService(service, sleep_s)
        app = create_app(serving_config(project, **overrides), root=project, environ={}, service=slow,
                         template_folder=templates_dir, retry_interval_s=None)
        app.testing = True
        return app, slow
    return make


def post(client, *images: bytes, headers=None):
    files = {"file": [(io.BytesIO(data), f"{index}.jpg") for index, data in enumerate(images)]}
    return client.post("/api/v1/predict", data=files, headers=headers or {})


def hold_a_slot(app, slow):
    """Start a prediction in the background that keeps its slot until slow.release is set."""
    answers = []
    thread = threading.Thread(target=lambda: answers.append(post(app.test_client(), JPEG)))
    thread.start()
    assert slow.started.wait(10)
    return thread, answers


def test_prediction_beyond_the_slots_gets_503_with_retry_after(slow_app):
    app, slow = slow_app(max_in_flight=1)
    thread, answers = hold_a_slot(app, slow)
    try:
        refused = post(app.test_client(), JPEG)
        legacy = app.test_client().post("/predict", json={"image": "aGVsbG8="})
    finally:
        slow.release.set()
        thread.join(30)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert refused.json["error"]["code"] == "overloaded"
    assert legacy.status_code == 503 and legacy.json["error"]["code"] == "overloaded"
    assert answers[0].status_code == 200
    assert slow.calls == 1


def test_health_and_readiness_answer_while_every_slot_is_taken(slow_app):
    app, slow = slow_app(max_in_flight=1)
    thread, _ = hold_a_slot(app, slow)
    try:
        client = app.test_client()
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        assert client.get("/api/v1/model").status_code == 200
    finally:
        slow.release.set()
        thread.join(30)


def test_a_slot_is_given_back_after_a_success_and_after_an_error(slow_app):
    app, slow = slow_app(max_in_flight=1, sleep_s=0.01)
    client = app.test_client()
    assert post(client, sample_images.truncated_jpeg()).status_code == 400
    assert post(client, JPEG).status_code == 200
    assert post(client, JPEG).status_code == 200


def test_a_request_that_waited_past_its_deadline_is_refused_before_any_decoding(slow_app):
    app, slow = slow_app(request_deadline_s=5, sleep_s=0.01)
    waited = post(app.test_client(), JPEG, headers={"X-Request-Start": f"t={time.time() - 6:.3f}"})
    assert waited.status_code == 503 and waited.headers["Retry-After"] == "1"
    assert waited.json["error"]["code"] == "deadline_exceeded"
    assert slow.calls == 0
    recent = post(app.test_client(), JPEG, headers={"X-Request-Start": f"t={time.time() - 1:.3f}"})
    assert recent.status_code == 200


def test_images_after_the_deadline_are_not_analyzed(slow_app):
    app, slow = slow_app(request_deadline_s=0.3, sleep_s=0.4)
    answer = post(app.test_client(), JPEG, JPEG, JPEG)
    assert answer.status_code == 503 and answer.json["error"]["code"] == "deadline_exceeded"
    assert slow.calls == 1


def test_refusals_are_counted_by_reason(slow_app):
    app, slow = slow_app(max_in_flight=1, request_deadline_s=5)
    client = app.test_client()
    post(client, JPEG, headers={"X-Request-Start": f"t={time.time() - 60:.3f}"})
    thread, _ = hold_a_slot(app, slow)
    try:
        post(client, JPEG)
        post(client, JPEG)
    finally:
        slow.release.set()
        thread.join(30)
    scraped = scrape(client)
    assert value(scraped, REJECTED, reason="deadline_exceeded") == 1
    assert value(scraped, REJECTED, reason="overloaded") == 2


@pytest.mark.parametrize("header", ["t=4102444800.0", "t=not-a-time", "nan", ""])
def test_a_request_start_in_the_future_or_unreadable_never_extends_the_deadline(header):
    admission = Admission(max_in_flight=1, deadline_s=10)
    before = time.monotonic()
    assert admission.deadline_for(header) <= time.monotonic() + 10
    assert admission.deadline_for(header) >= before + 10


@pytest.mark.parametrize(("configured", "threads", "expected"),
                         [(None, "4", 3), (None, "2", 1), (None, "1", 1), (None, None, 1), (5, "2", 5)])
def test_slots_default_to_the_worker_threads_minus_one(project, configured, threads, expected):
    environ = {} if threads is None else {"GUNICORN_THREADS": threads}
    config = serving_config(project, max_in_flight=configured, request_deadline_s=3)
    admission = Admission.from_config(config, environ)
    assert (admission.max_in_flight, admission.deadline_s) == (expected, 3)
