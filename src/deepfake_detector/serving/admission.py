"""Admission control: a worker runs at most max_in_flight predictions at once, each within a deadline counted from
its arrival; any other prediction request is refused at once with 503 and Retry-After instead of waiting in a
queue nobody bounds (gunicorn's gthread worker queues accepted connections without limit). Liveness and readiness
are never subject to it: with max_in_flight below the worker's threads, one thread stays free for them.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g, has_request_context, request

from deepfake_detector.config.entities import ServingConfig
from deepfake_detector.serving.concurrency import inferences_per_worker
from deepfake_detector.serving.errors import ApiError

logger = logging.getLogger(__name__)

EXTENSION_KEY = "deepfake_detector_admission"
# The routes that run the model; every other route (health, page, model metadata, metrics) is never refused here.
PREDICTION_ENDPOINTS = frozenset({"api.predict", "legacy.predict"})
# When the proxy handed the request over, as nginx's `proxy_set_header X-Request-Start "t=${msec}"` writes it.
REQUEST_START_HEADER = "X-Request-Start"
RETRY_AFTER_S = 1
DISCARD_CHUNK_BYTES = 256 * 1024


class OverloadedError(ApiError):
    """A prediction refused for lack of room or time: 503, with Retry-After."""

    def __init__(self, code: str, message: str):
        super().__init__(503, code, message, retry_after_s=RETRY_AFTER_S)


@dataclass
class Admission:
    """One worker's slots for predictions and the deadline each one gets."""

    max_in_flight: int
    deadline_s: float

    def __post_init__(self):
        self._slots = threading.BoundedSemaphore(self.max_in_flight)

    @classmethod
    def from_config(cls, config: ServingConfig, environ: Mapping[str, str] | None = None) -> Admission:
        """serve.max_in_flight slots, or for null the worker's threads minus one (concurrency.py, the same number
        the interpreter threads are sized by); serve.request_deadline_s."""
        return cls(inferences_per_worker(config, environ), float(config.request_deadline_s))

    def try_enter(self) -> bool:
        """Take a slot without waiting; False when all are taken."""
        return self._slots.acquire(blocking=False)

    def leave(self) -> None:
        self._slots.release()

    def deadline_for(self, request_start: str | None) -> float:
        """The time.monotonic() by which the request must have started its work: deadline_s after the proxy's
        X-Request-Start, else after now. A start in the future counts as now, so the header can only shorten
        a request's own deadline, never extend it."""
        now_wall, now = time.time(), time.monotonic()
        started = _seconds_since_epoch(request_start)
        waited = max(0.0, now_wall - started) if started is not None else 0.0
        return now + self.deadline_s - waited


def register_admission(app: Flask, admission: Admission,
                       endpoints: Iterable[str] = PREDICTION_ENDPOINTS) -> None:
    """Refuse prediction requests beyond the worker's slots or past their deadline, before their body is read."""
    app.extensions[EXTENSION_KEY] = (admission, frozenset(endpoints))
    app.before_request(_admit)
    app.teardown_request(_release)


def check_deadline() -> None:
    """Raise OverloadedError (503 deadline_exceeded) when the current prediction request's deadline has passed.

    Called between the costly steps (before each image is decoded; the service may call it before inference).
    Does nothing outside a request or for a request without a deadline, e.g. in the `predict` command."""
    if not has_request_context():
        return
    deadline = g.get("admission_deadline")
    if deadline is not None and time.monotonic() > deadline:
        raise OverloadedError("deadline_exceeded", "the request waited too long to be answered in time; retry later")


class DeadlineCheckedService:
    """A service whose analyze() and analyze_upload() first check the request's deadline, so a request of several
    images stops at the first image it no longer has time for. Everything else is the service's own."""

    def __init__(self, service: Any):
        self._service = service

    def analyze(self, *args: Any, **kwargs: Any) -> Any:
        check_deadline()
        return self._service.analyze(*args, **kwargs)

    def analyze_upload(self, *args: Any, **kwargs: Any) -> Any:
        check_deadline()
        return self._service.analyze_upload(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)


def _admit() -> None:
    admission, endpoints = _state()
    if request.endpoint not in endpoints:
        return
    g.admission_deadline = admission.deadline_for(request.headers.get(REQUEST_START_HEADER))
    try:
        check_deadline()
        if not admission.try_enter():
            raise OverloadedError("overloaded", f"this server is answering {admission.max_in_flight} prediction "
                                                "request(s) already; retry later")
    except OverloadedError:
        _discard_body()
        raise
    g.admission_slot = True


def _discard_body() -> None:
    """Read the refused request's body to its end without keeping it. Closing a connection that still holds unread
    bytes resets it, and the proxy, still sending the body it buffered, would turn the 503 into a 502; from a
    proxy on loopback the body arrives at once (a body over the cap is the cap's 413 instead)."""
    with contextlib.suppress(Exception):
        stream = request.stream
        while stream.read(DISCARD_CHUNK_BYTES):
            pass


def _release(_error: BaseException | None) -> None:
    if g.pop("admission_slot", False):
        admission, _ = _state()
        admission.leave()


def _state() -> tuple[Admission, frozenset[str]]:
    return current_app.extensions[EXTENSION_KEY]


def _seconds_since_epoch(header: str | None) -> float | None:
    """X-Request-Start as seconds since the epoch: `t=1733300000.123` (nginx's $msec) or a bare number; None
    when absent or unreadable."""
    if not header:
        return None
    text = header.strip().removeprefix("t=")
    try:
        value = float(text[:32])
    except ValueError:
        return None
    return value if value == value and 0 < value < 1e11 else None  # not NaN, not milliseconds or nonsense

