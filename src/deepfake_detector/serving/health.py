"""Liveness (/healthz: the process answers) and readiness (/readyz: a model is loaded and warm, and the process
is not shutting down)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from deepfake_detector.serving.context import app_state
from deepfake_detector.serving.errors import error_response
from deepfake_detector.serving.shutdown import is_stopping

blueprint = Blueprint("health", __name__)

STOPPING_REASON = "the server is shutting down: it finishes the requests it holds and takes no more"


@blueprint.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz():
    if is_stopping():
        return error_response(503, "shutting_down", STOPPING_REASON, status="not_ready", reason=STOPPING_REASON)
    holder = app_state().holder
    service = holder.current()
    if service is None:
        return error_response(503, "model_not_ready", holder.reason, status="not_ready", reason=holder.reason)
    return jsonify({"status": "ready", "model_version": service.model_version, "backend": service.backend,
                    "variant": service.variant})
