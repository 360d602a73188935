"""Admission control in one app: predictions beyond the worker's slots wait in its short queue and are answered
when a slot frees; beyond the queue, or past their deadline, they get 503 with Retry-After; health checks never wait
for a slot, a slot comes back after every answer, and each refusal is counted in /metrics by its reason."""
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
    def make(sleep_s: float = 0.0, environ: dict | None = None, **overrides):
        slow = SlowService(service, sleep_s)
        app = create_app(serving_config(project, **overrides), root=project, environ=environ or {}, service=slow,
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


QUEUED = "deepfake_detector_queued_predictions"
ONE_SLOT_ONE_PLACE = {"GUNICORN_THREADS": "3"}  # with max_in_flight=1: one runs, one waits, one for health checks


def queue_one(app, client=None):
    """Post a prediction in the background and wait until it is waiting in the queue."""
    answers = []
    thread = threading.Thread(target=lambda: answers.append(post(app.test_client(), JPEG)))
    thread.start()
    deadline = time.monotonic() + 10
    while value(scrape(client or app.test_client()), QUEUED) != 1:
        assert time.monotonic() < deadline, "the second prediction never waited in the queue"
        time.sleep(0.01)
    return thread, answers


def test_a_prediction_beyond_the_slots_waits_in_the_queue_and_is_answered_when_a_slot_frees(slow_app):
    app, slow = slow_app(max_in_flight=1, environ=ONE_SLOT_ONE_PLACE)
    first, first_answers = hold_a_slot(app, slow)
    second, second_answers = queue_one(app)
    assert slow.calls == 1  # the queued request has not started its work
    slow.release.set()
    for thread in (first, second):
        thread.join(30)
    assert [answer.status_code for answer in first_answers + second_answers] == [200, 200]
    assert slow.calls == 2
    assert value(scrape(app.test_client()), QUEUED) == 0


def test_beyond_the_queue_a_prediction_is_refused_at_once(slow_app):
    app, slow = slow_app(max_in_flight=1, environ=ONE_SLOT_ONE_PLACE)
    first, _ = hold_a_slot(app, slow)
    second, second_answers = queue_one(app)
    try:
        refused = post(app.test_client(), JPEG)
        health = app.test_client().get("/healthz")
    finally:
        slow.release.set()
        first.join(30)
        second.join(30)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert refused.json["error"]["code"] == "overloaded"
    assert "1 more waiting" in refused.json["error"]["message"]
    assert health.status_code == 200
    assert second_answers[0].status_code == 200 and slow.calls == 2


def test_a_queued_prediction_is_refused_when_its_deadline_passes_before_a_slot_frees(slow_app):
    app, slow = slow_app(max_in_flight=1, request_deadline_s=5, environ=ONE_SLOT_ONE_PLACE)
    first, _ = hold_a_slot(app, slow)
    try:  # handed over by the proxy 3 s ago: 2 s left, spent waiting in the queue for the slot
        answers = []
        queued = threading.Thread(target=lambda: answers.append(
            post(app.test_client(), JPEG, headers={"X-Request-Start": f"t={time.time() - 3:.3f}"})))
        queued.start()
        deadline = time.monotonic() + 10
        while value(scrape(app.test_client()), QUEUED) != 1 and queued.is_alive():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert queued.is_alive(), "the request was refused before it waited in the queue"
        queued.join(30)
    finally:
        slow.release.set()
        first.join(30)
    waited = answers[0]
    assert waited.status_code == 503 and waited.json["error"]["code"] == "deadline_exceeded"
    assert slow.calls == 1
    scraped = scrape(app.test_client())
    assert value(scraped, QUEUED) == 0 and value(scraped, REJECTED, reason="deadline_exceeded") == 1


class CountingGauge:
    def __init__(self):
        self.value = 0

    def inc(self):
        self.value += 1

    def dec(self):
        self.value -= 1


def test_a_slot_given_back_goes_to_the_oldest_waiting_request_not_to_a_newcomer():
    waiting = CountingGauge()
    admission = Admission(max_in_flight=1, deadline_s=10, max_queued=1, waiting=waiting)
    assert admission.enter(time.monotonic() + 10) is None  # the one slot
    outcome = []
    queued = threading.Thread(target=lambda: outcome.append(admission.enter(time.monotonic() + 10)))
    queued.start()
    deadline = time.monotonic() + 10
    while waiting.value != 1:
        assert time.monotonic() < deadline, "the second request never queued"
        time.sleep(0.005)
    admission.leave()
    # A newcomer arriving as the slot frees finds it already handed over: it queues, and times out.
    assert admission.enter(time.monotonic() + 0.2) == "deadline_exceeded"
    queued.join(10)
    assert outcome == [None] and waiting.value == 0
    admission.leave()
    with pytest.raises(RuntimeError, match="never taken"):
        admission.leave()


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


def test_the_slots_and_the_queue_follow_the_worker_shape(project):
    config = serving_config(project, max_in_flight=None, request_deadline_s=3)
    admission = Admission.from_config(config, {"GUNICORN_THREADS": "8"})
    assert (admission.max_in_flight, admission.max_queued, admission.deadline_s) == (3, 4, 3)


def test_slots_that_leave_no_thread_for_health_checks_are_warned_about(project, caplog):
    config = serving_config(project, max_in_flight=4)
    with caplog.at_level("WARNING", logger="deepfake_detector.serving.admission"):
        Admission.from_config(config, {"GUNICORN_THREADS": "5"})
        assert not caplog.records
        Admission.from_config(config, {"GUNICORN_THREADS": "4"})
    assert "leaves none of this worker's 4 thread(s) for health checks" in caplog.text
