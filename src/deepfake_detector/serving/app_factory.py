"""create_app: the Flask app around one DetectionService per process.

The model is loaded and warmed up here, once; request handlers only read it. Templates and static
files come from the repository's top-level templates/ and static/ folders unless told otherwise.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from flask import Flask
from flask_cors import CORS

from deepfake_detector.config.entities import ServingConfig
from deepfake_detector.serving import api, health, legacy, ui
from deepfake_detector.serving.admission import Admission, DeadlineCheckedService, register_admission
from deepfake_detector.serving.context import AppState, attach_state
from deepfake_detector.serving.errors import register_error_handlers
from deepfake_detector.serving.lifecycle import RETRY_INTERVAL_S, ServiceHolder
from deepfake_detector.serving.metrics import METRICS_TOKEN_ENV, ServingMetrics, register_metrics
from deepfake_detector.serving.request_logging import REQUEST_ID_HEADER, register_request_ids
from deepfake_detector.serving.security_headers import register_security_headers
from deepfake_detector.serving.service import DetectionService
from deepfake_detector.serving.settings import (
    TRAIN_TOKEN_ENV,
    apply_environment,
    load_serving_config,
    repository_root,
)
from deepfake_detector.serving.training import TrainingRunner, create_training_blueprint

TRAINING_STATE_DIR = Path("logs") / "training"


def create_app(config: ServingConfig | None = None, *, root: str | Path | None = None,
               environ: Mapping[str, str] | None = None, service: DetectionService | None = None,
               template_folder: str | Path | None = None, static_folder: str | Path | None = None,
               training_command: Sequence[str] | None = None,
               retry_interval_s: float | None = RETRY_INTERVAL_S) -> Flask:
    """The app, with its model loaded (or the reason it could not be, served by /readyz).

    config: the serving entity (default: root's config/config.yaml and params.yaml); the
    DEEPFAKE_DETECTOR_* variables of environ (default: os.environ) override it. service: an
    already loaded DetectionService to share instead of loading one. retry_interval_s: while no
    model is loaded, how often to try again in the background (None: never).
    """
    root = Path(root) if root is not None else repository_root()
    environ = os.environ if environ is None else environ
    config = apply_environment(config if config is not None else load_serving_config(root), environ)

    app = Flask(__name__, root_path=str(root),
                template_folder=str(template_folder or root / "templates"),
                static_folder=str(static_folder or root / "static"), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = config.max_request_bytes
    app.json.sort_keys = False

    metrics = ServingMetrics.for_this_process()
    if service is not None:
        holder = ServiceHolder.with_service(DeadlineCheckedService(metrics.measure(service)))
    else:
        holder = ServiceHolder(
            lambda: DeadlineCheckedService(metrics.measure(DetectionService.from_config(config, environ={}))),
            retry_interval_s)
        holder.load_now()
    attach_state(app, AppState(config=config, holder=holder))

    register_request_ids(app)
    register_metrics(app, metrics, environ.get(METRICS_TOKEN_ENV))
    # After the metrics hooks, so that a refusal is timed and counted (rejected_requests_total by its code).
    register_admission(app, Admission.from_config(config, environ, waiting=metrics.queued))
    register_security_headers(app)
    register_error_handlers(app)
    for module in (ui, health, api, legacy):
        app.register_blueprint(module.blueprint)
    if config.training_enabled:
        runner = TrainingRunner(root, root / TRAINING_STATE_DIR, training_command)
        app.register_blueprint(create_training_blueprint(runner, environ.get(TRAIN_TOKEN_ENV)))
    if config.cors_origins:
        allowed = {"origins": list(config.cors_origins), "expose_headers": [REQUEST_ID_HEADER]}
        CORS(app, resources={r"/api/*": allowed, r"/predict": allowed})
    return app
