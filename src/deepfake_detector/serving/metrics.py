"""Prometheus metrics of the app and GET /metrics: traffic and latency by route and status, requests in
flight and refused, decode and inference time, the served P(fake) and fake rate (a drift signal), and
which model answers.

Under gunicorn every worker writes its values to files in PROMETHEUS_MULTIPROC_DIR (gunicorn_hooks.py
makes the folder) and /metrics merges them all, whichever worker answers the scrape. Without that
variable (Flask's development server, tests) /metrics shows the app's own registry.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from deepfake_detector.contracts.errors import ConfigError
from deepfake_detector.serving import health
from deepfake_detector.serving.analysis import ImageAnalysis
from deepfake_detector.serving.errors import error_response
from deepfake_detector.serving.gunicorn_hooks import MULTIPROCESS_DIR_ENV
from deepfake_detector.serving.service import DetectionService
from deepfake_detector.serving.video_analysis import VideoAnalysis

logger = logging.getLogger(__name__)

METRICS_TOKEN_ENV = "DEEPFAKE_DETECTOR_METRICS_TOKEN"
EXTENSION_KEY = "deepfake_detector_metrics"
PREFIX = "deepfake_detector"
UNMATCHED_ROUTE = "<unmatched>"
# Refusals for lack of room or readiness (body or item caps, no model, overload), counted by error code.
REJECTED_STATUSES = frozenset({413, 429, 503})
# Headers a reverse proxy adds: such a request came from elsewhere, even when the proxy itself is on loopback.
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")

REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
PROBABILITY_BUCKETS = tuple(round(0.05 * step, 2) for step in range(1, 21))

blueprint = Blueprint("metrics", __name__)


class ServingMetrics:
    """The app's metric families, kept in a registry of its own so that several apps in one process (tests)
    never collide; in multiprocess mode the values also land in the shared folder /metrics reads."""

    def __init__(self, multiprocess_dir: str | None = None):
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(f"{PREFIX}_http_requests", "HTTP requests answered, by route (URL rule) and status",
                                ("route", "status"), registry=registry)
        self.request_duration = Histogram(
            f"{PREFIX}_http_request_duration_seconds", "Time to answer a request, by route (URL rule) and status",
            ("route", "status"), buckets=REQUEST_BUCKETS, registry=registry)
        self.in_flight = Gauge(f"{PREFIX}_http_requests_in_flight", "Requests being answered now",
                               multiprocess_mode="livesum", registry=registry)
        self.queued = Gauge(f"{PREFIX}_queued_predictions", "Prediction requests waiting for a slot now "
                            "(serve.max_queued)", multiprocess_mode="livesum", registry=registry)
        self.rejected = Counter(f"{PREFIX}_rejected_requests",
                                "Requests refused for size, item count, readiness or load, by error code",
                                ("reason",), registry=registry)
        self.decode_duration = Histogram(f"{PREFIX}_decode_duration_seconds", "Time to decode one uploaded image",
                                         buckets=STEP_BUCKETS, registry=registry)
        self.inference_duration = Histogram(
            f"{PREFIX}_inference_duration_seconds", "Time to resize and score one image's regions with the model",
            buckets=STEP_BUCKETS, registry=registry)
        self.fake_probability = Histogram(f"{PREFIX}_fake_probability", "Served P(fake), one per image",
                                          buckets=PROBABILITY_BUCKETS, registry=registry)
        self.verdicts = Counter(f"{PREFIX}_verdicts", "Images given a verdict", registry=registry)
        self.fake_verdicts = Counter(f"{PREFIX}_fake_verdicts", "Images judged fake", registry=registry)
        # A gauge at 1 rather than an Info metric: prometheus-client has no Info in multiprocess mode.
        self.model_info = Gauge(f"{PREFIX}_model_info", "The model that answers (version: its sha256 prefix)",
                                ("version", "variant", "backend"), multiprocess_mode="livemax", registry=registry)

    @classmethod
    def for_this_process(cls) -> ServingMetrics:
        """Multiprocess when PROMETHEUS_MULTIPROC_DIR is set in this process's environment, since that is where
        prometheus-client itself looks. Raises ConfigError when it names no folder."""
        folder = os.environ.get(MULTIPROCESS_DIR_ENV) or None
        if folder is not None and not os.path.isdir(folder):
            raise ConfigError(f"environment: {MULTIPROCESS_DIR_ENV}={folder!r} is not a directory "
                              "(metrics of several workers are kept there)")
        return cls(folder)

    def measure(self, service: DetectionService) -> MeasuredService:
        """service, with its model described by model_info and every analysis it makes observed."""
        self.model_info.labels(service.model_version, service.variant, service.backend).set(1)
        return MeasuredService(service, self)

    def observe_analysis(self, analysis: ImageAnalysis | VideoAnalysis) -> None:
        self.decode_duration.observe(analysis.timings.decode / 1000.0)
        self.inference_duration.observe(analysis.timings.predict / 1000.0)
        self.fake_probability.observe(analysis.fake_probability)
        self.verdicts.inc()
        if analysis.is_fake:
            self.fake_verdicts.inc()

    def observe_response(self, route: str, status: int, seconds: float, rejection: str | None) -> None:
        self.requests.labels(route, str(status)).inc()
        self.request_duration.labels(route, str(status)).observe(seconds)
        if rejection is not None:
            self.rejected.labels(rejection).inc()

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The text a scrape gets (the format the Accept header asks for) and its content type."""
        registry = self.registry
        if self.multiprocess_dir is not None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self.multiprocess_dir)
        encoder, content_type = choose_encoder(accept or "")
        return encoder(registry), content_type


class MeasuredService:
    """A DetectionService whose analyses are observed, so that handlers stay unaware of metrics and a service
    shared by several apps (tests) is left as it is. Everything else is the service's own."""

    def __init__(self, service: DetectionService, metrics: ServingMetrics):
        self._service = service
        self._metrics = metrics

    def analyze(self, *args: Any, **kwargs: Any) -> ImageAnalysis:
        analysis = self._service.analyze(*args, **kwargs)
        self._metrics.observe_analysis(analysis)
        return analysis

    def analyze_upload(self, *args: Any, **kwargs: Any) -> ImageAnalysis | VideoAnalysis:
        analysis = self._service.analyze_upload(*args, **kwargs)
        self._metrics.observe_analysis(analysis)  # a video counts once, by its verdict
        return analysis

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)


def register_metrics(app: Flask, metrics: ServingMetrics, token: str | None) -> None:
    """Time and count every request but the scrapes, and serve /metrics (token: the bearer token it requires;
    None: loopback clients only)."""
    app.extensions[EXTENSION_KEY] = (metrics, token or None)
    app.before_request(_start_timer)
    app.after_request(_record_response)
    app.teardown_request(_end_in_flight)
    app.register_blueprint(blueprint)


@blueprint.get("/metrics")
def metrics_text():
    metrics, token = current_app.extensions[EXTENSION_KEY]
    refusal = _refusal(token)
    if refusal is not None:
        return refusal
    try:
        body, content_type = metrics.exposition(request.headers.get("Accept"))
    except Exception:  # a broken metrics file must not turn a scrape into a 500 or take the worker down
        logger.exception("cannot collect the metrics")
        return error_response(503, "metrics_unavailable", "the metrics cannot be collected now; see the server log")
    return Response(body, content_type=content_type)


def _refusal(token: str | None) -> tuple[Response, int] | None:
    """None when the client may read the metrics, else the 401/403 answer."""
    if token is None:
        if _is_loopback_client():
            return None
        return error_response(403, "forbidden", f"metrics are served to loopback clients only, unless "
                                                f"{METRICS_TOKEN_ENV} is set (then with that bearer token)")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        response, status = error_response(401, "unauthorized", "metrics need an 'Authorization: Bearer <token>' "
                                                               "header")
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response, status
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return error_response(403, "forbidden", "wrong metrics token")
    return None


def _is_loopback_client() -> bool:
    if any(header in request.headers for header in FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:  # e.g. a Unix socket, where a proxy may stand in front: not provably local
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _is_scrape() -> bool:
    return request.blueprint == blueprint.name


def _start_timer() -> None:
    if _is_scrape():
        return
    metrics, _ = current_app.extensions[EXTENSION_KEY]
    g.metrics_started = time.perf_counter()
    metrics.in_flight.inc()


def _record_response(response: Response) -> Response:
    started = g.get("metrics_started")
    if started is None:
        return response
    metrics, _ = current_app.extensions[EXTENSION_KEY]
    route = request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE
    try:
        metrics.observe_response(route, response.status_code, time.perf_counter() - started, _rejection(response))
    except Exception:  # the answer is ready: a metrics failure must not replace it with an error
        logger.exception("cannot record the request's metrics")
    return response


def _end_in_flight(_error: BaseException | None) -> None:
    if g.pop("metrics_started", None) is not None:
        metrics, _ = current_app.extensions[EXTENSION_KEY]
        metrics.in_flight.dec()


def _rejection(response: Response) -> str | None:
    """The error code of a refusal for lack of room or readiness; None for any other answer, including a probe's
    503 (not ready is what /readyz reports, not a request it refuses)."""
    if response.status_code not in REJECTED_STATUSES or request.blueprint == health.blueprint.name:
        return None
    body = response.get_json(silent=True) if response.is_json else None
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else str(response.status_code)
