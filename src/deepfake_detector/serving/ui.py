"""The web page: templates/index.html, given the model's metadata (or None) and the upload limits."""
from __future__ import annotations

from flask import Blueprint, render_template

from deepfake_detector.serving.context import app_state, request_limits

blueprint = Blueprint("ui", __name__)


@blueprint.get("/")
def index():
    state = app_state()
    service = state.holder.current()
    return render_template("index.html", model=service.model_info() if service else None,
                           limits=request_limits(state.config))
