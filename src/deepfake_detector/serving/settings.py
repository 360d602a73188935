"""Serving settings: the ServingConfig from the YAML files, with environment overrides applied.

Environment variables (each replaces one ServingConfig field; unset or empty leaves it as configured):

=================================  ==========================================================
``DEEPFAKE_DETECTOR_MODEL``        model_file: the trained Keras model (.h5)
``DEEPFAKE_DETECTOR_EXPORT_DIR``   export_dir: model_card.json and the .tflite exports
``DEEPFAKE_DETECTOR_BACKEND``      backend: auto, tflite or keras
``DEEPFAKE_DETECTOR_FACE_DETECTOR``  face_detector: auto, off, blazeface or blazeface_full_range
``DEEPFAKE_DETECTOR_CORS_ORIGINS`` cors_origins: comma-separated origins (``-`` or ``none``: no origin)
=================================  ==========================================================

``DEEPFAKE_DETECTOR_TRAIN_TOKEN`` is read by the training route itself (see training.py), and ``PORT``,
``WEB_CONCURRENCY``, ``GUNICORN_THREADS``, ``GUNICORN_TIMEOUT``, ``GUNICORN_GRACEFUL_TIMEOUT`` by gunicorn.conf.py.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import deepfake_detector
from deepfake_detector.config.entities import ServingConfig
from deepfake_detector.contracts.errors import ConfigError
from deepfake_detector.contracts.export_layout import BACKENDS
from deepfake_detector.contracts.faces import SERVED_FACE_DETECTORS

MODEL_ENV = "DEEPFAKE_DETECTOR_MODEL"
EXPORT_DIR_ENV = "DEEPFAKE_DETECTOR_EXPORT_DIR"
BACKEND_ENV = "DEEPFAKE_DETECTOR_BACKEND"
FACE_DETECTOR_ENV = "DEEPFAKE_DETECTOR_FACE_DETECTOR"
CORS_ORIGINS_ENV = "DEEPFAKE_DETECTOR_CORS_ORIGINS"
TRAIN_TOKEN_ENV = "DEEPFAKE_DETECTOR_TRAIN_TOKEN"



def repository_root() -> Path:
    """The checkout holding config/, templates/ and static/ (src/deepfake_detector/__init__.py is 3 levels down)."""
    return Path(deepfake_detector.__file__).resolve().parents[2]


def load_serving_config(root: Path | None = None) -> ServingConfig:
    """The serving entity read from root's config/config.yaml and params.yaml (ConfigError when invalid)."""
    from deepfake_detector.config import ConfigurationManager

    return ConfigurationManager(root=root or repository_root()).get_serving_config()


def apply_environment(config: ServingConfig, environ: Mapping[str, str]) -> ServingConfig:
    """config with the DEEPFAKE_DETECTOR_* overrides above; a bad value is a ConfigError naming the variable."""
    changes: dict[str, object] = {}
    if value := environ.get(MODEL_ENV, "").strip():
        changes["model_file"] = Path(value).expanduser()
    if value := environ.get(EXPORT_DIR_ENV, "").strip():
        changes["export_dir"] = Path(value).expanduser()
    if value := environ.get(BACKEND_ENV, "").strip().lower():
        changes["backend"] = _one_of(BACKEND_ENV, value, BACKENDS)
    if value := environ.get(FACE_DETECTOR_ENV, "").strip().lower():
        changes["face_detector"] = _one_of(FACE_DETECTOR_ENV, value, SERVED_FACE_DETECTORS)
    if value := environ.get(CORS_ORIGINS_ENV, "").strip():
        origins = () if value.lower() in ("-", "none") else tuple(o.strip() for o in value.split(",") if o.strip())
        changes["cors_origins"] = origins
    return dataclasses.replace(config, **changes) if changes else config


def _one_of(variable: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"environment: {variable}={value!r} is not one of {', '.join(choices)}")
    return value
