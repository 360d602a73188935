"""The least a WSGI app can do per prediction, for `make bench` only: read the raw body, decode + predict it with
the model the real app serves, answer its P(fake) as JSON. No framework, routing, logging, metrics or admission.

Served by the same gunicorn (gunicorn.conf.py) behind the same nginx and put under the same load as app.py, its
throughput is the most the server, the proxy and the load generator leave for any app on this machine: the real
app's figure is read beside it. Any GET answers 200 once the model is loaded (the benchmark's readiness probe).
Run it as `gunicorn --config gunicorn.conf.py deepfake_detector.benchmarks.bare_wsgi_app:app`.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable

from deepfake_detector.serving.service import DetectionService
from deepfake_detector.serving.settings import apply_environment, load_serving_config

_READY = b'{"status": "ready"}'


def _load_service() -> DetectionService:
    """The service app.py would load in this worker: the same settings, environment overrides and thread plan."""
    return DetectionService.from_config(apply_environment(load_serving_config(), os.environ), environ={})


_service = _load_service()


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    if environ["REQUEST_METHOD"] == "GET":
        return _answer(start_response, "200 OK", _READY)
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    probability = _service.analyze(body, "upload").fake_probability  # an error is gunicorn's 500: the bench fails
    return _answer(start_response, "200 OK", json.dumps({"results": [{"fake_probability": probability}]}).encode())


def _answer(start_response: Callable, status: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
