"""Liveness (/healthz: the process answers) and readiness (/readyz: a model is loaded and warm)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from deepfake_detector.serving.context import app_state
from deepfake_detector.serving.errors import error_response

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz():
    holder = app_state().holder
    service = holder.current()
    if service is None:
        return error_response(503, "model_not_ready", holder.reason, status="not_ready", reason=holder.reason)
    return jsonify({"status": "ready", "model_version": service.model_version, "backend": service.backend,
                    "variant": service.variant})
