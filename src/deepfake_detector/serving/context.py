"""What an app instance holds between requests (config, model slot) and how handlers reach it."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from deepfake_detector.config.entities import ServingConfig
from deepfake_detector.serving.errors import ApiError
from deepfake_detector.serving.lifecycle import ServiceHolder
from deepfake_detector.serving.service import DetectionService
from deepfake_detector.serving.uploads import limit_pillow_pixels

EXTENSION_KEY = "deepfake_detector"


@dataclass(frozen=True)
class AppState:
    config: ServingConfig
    holder: ServiceHolder


def attach_state(app: Flask, state: AppState) -> None:
    """Install the app's state at start-up, with the one process-wide setting its config implies: Pillow's
    decompression-bomb cap (one app per serving process)."""
    app.extensions[EXTENSION_KEY] = state
    limit_pillow_pixels(state.config.max_image_pixels)


def app_state() -> AppState:
    return current_app.extensions[EXTENSION_KEY]


def ready_service() -> DetectionService:
    """The loaded service, or a 503 model_not_ready ApiError saying why there is none."""
    holder = app_state().holder
    service = holder.current()
    if service is None:
        raise ApiError(503, "model_not_ready", holder.reason)
    return service


def request_limits(config: ServingConfig) -> dict[str, float | int]:
    return {"max_request_mb": round(config.max_request_bytes / (1024 * 1024), 2),
            "max_images_per_request": config.max_images_per_request,
            "max_image_pixels": config.max_image_pixels}
