"""Admission control: a worker runs at most max_in_flight predictions at once, each within a deadline counted from
its arrival. A prediction that finds every slot taken waits for one in a short queue (max_queued requests, each at
most until its deadline), so a burst a little above the slots is answered instead of bounced back to clients that
would resend it at once; beyond the queue it is refused at once with 503 and Retry-After, instead of waiting in a
queue nobody bounds (gunicorn's gthread worker queues accepted connections without limit). A waiting request holds a
thread but not its body, which is read only once it has a slot. Liveness and readiness are never subject to it:
serving/concurrency.py leaves one of the worker's threads free for them.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import Flask, current_app, g, has_request_context, request

from deepfake_detector.config.entities import ServingConfig
from deepfake_detector.serving.concurrency import THREADS_ENV, worker_shape
from deepfake_detector.serving.errors import ApiError

logger = logging.getLogger(__name__)

EXTENSION_KEY = "deepfake_detector_admission"
# The routes that run the model; every other route (health, page, model metadata, metrics) is never refused here.
PREDICTION_ENDPOINTS = frozenset({"api.predict", "legacy.predict"})
# When the proxy handed the request over, as nginx's `proxy_set_header X-Request-Start "t=${msec}"` writes it.
REQUEST_START_HEADER = "X-Request-Start"
RETRY_AFTER_S = 1
DISCARD_CHUNK_BYTES = 256 * 1024
DEADLINE_MESSAGE = "the request waited too long to be answered in time; retry later"


class OverloadedError(ApiError):
    """A prediction refused for lack of room or time: 503, with Retry-After."""

    def __init__(self, code: str, message: str):
        super().__init__(503, code, message, retry_after_s=RETRY_AFTER_S)


class _Waiting(Protocol):
    """What counts the requests waiting for a slot: a prometheus Gauge."""

    def inc(self) -> None: ...

    def dec(self) -> None: ...


class _Uncounted:
    def inc(self) -> None:
        pass

    def dec(self) -> None:
        pass


@dataclass
class Admission:
    """One worker's slots for predictions, its queue for a slot, and the deadline each request gets."""

    max_in_flight: int
    deadline_s: float
    max_queued: int = 0
    waiting: _Waiting = field(default_factory=_Uncounted)

    def __post_init__(self):
        self._lock = threading.Lock()
        self._free_slots = self.max_in_flight
        # First come, first served: leave() hands its slot to the oldest waiter (setting its Event), so a request
        # that arrives as a slot frees never overtakes one already waiting.
        self._waiters: collections.deque[threading.Event] = collections.deque()

    @classmethod
    def from_config(cls, config: ServingConfig, environ: Mapping[str, str] | None = None,
                    waiting: _Waiting | None = None) -> Admission:
        """The worker's slots and queue (concurrency.worker_shape, the same numbers the interpreter threads are sized
        by) and serve.request_deadline_s; waiting counts the queue (a metrics gauge)."""
        environ = os.environ if environ is None else environ
        shape = worker_shape(config, environ)
        if THREADS_ENV in environ and config.max_in_flight is not None and config.max_in_flight >= shape.threads:
            logger.warning("serve.max_in_flight %d leaves none of this worker's %d thread(s) for health checks: "
                           "/healthz may wait while every prediction slot is busy", config.max_in_flight,
                           shape.threads)
        return cls(shape.max_in_flight, float(config.request_deadline_s), shape.max_queued,
                   waiting if waiting is not None else _Uncounted())

    def enter(self, deadline: float) -> str | None:
        """Take a slot, waiting for one in the queue (first come, first served) until time.monotonic() reaches
        deadline; None once a slot is held, else why not: "overloaded" (slots and queue full) or
        "deadline_exceeded" (no slot came in time)."""
        with self._lock:
            if self._free_slots and not self._waiters:
                self._free_slots -= 1
                return None
            if len(self._waiters) >= self.max_queued:
                return "overloaded"
            handed_over = threading.Event()
            self._waiters.append(handed_over)
        self._count_waiting(+1)
        try:
            handed_over.wait(max(0.0, deadline - time.monotonic()))
            with self._lock:
                if handed_over.is_set():  # leave() gave it a slot, perhaps just as the wait timed out
                    return None
                self._waiters.remove(handed_over)
                return "deadline_exceeded"
        finally:
            self._count_waiting(-1)

    def leave(self) -> None:
        """Give a slot back: to the oldest waiting request if there is one."""
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()
            elif self._free_slots < self.max_in_flight:
                self._free_slots += 1
            else:
                raise RuntimeError("admission: a slot was given back that was never taken")

    def _count_waiting(self, change: int) -> None:
        """Move the waiting gauge; a metrics failure must never cost a slot or a queue place."""
        try:
            (self.waiting.inc if change > 0 else self.waiting.dec)()
        except Exception:
            logger.exception("cannot update the queued predictions gauge")

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
    """Queue, and refuse, prediction requests beyond the worker's slots or past their deadline, before their body is
    read."""
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
        raise OverloadedError("deadline_exceeded", DEADLINE_MESSAGE)


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
        refusal = admission.enter(g.admission_deadline)
        if refusal == "overloaded":
            raise OverloadedError("overloaded", f"this server is answering {admission.max_in_flight} prediction "
                                                f"request(s) and has {admission.max_queued} more waiting already; "
                                                "retry later")
        if refusal is not None:
            raise OverloadedError(refusal, DEADLINE_MESSAGE)
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

