"""Every error the app answers is JSON of one shape: {"error": {"code": "...", "message": "..."}}.

ApiError is what handlers raise for a request they refuse; the handlers registered here turn it,
Werkzeug's HTTP errors, bad images and anything unexpected into that shape with the right status.
"""
from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from deepfake_detector.contracts.errors import ImageError, VideoError, VideoTooLargeError
from deepfake_detector.serving.uploads import ImageTooLargeError
from deepfake_detector.utils.text import shorten

logger = logging.getLogger(__name__)

# Messages are built from pieces already cut short (utils.text.shorten); this bound holds whatever slips through,
# e.g. a decoder's own error text, so no refusal answers or logs more than this.
MESSAGE_LIMIT = 1000

# Stable codes for Werkzeug's own errors (routing, body size, parsing).
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    500: "internal_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """A request the API refuses, with the HTTP status and a stable machine-readable code; retry_after_s, when
    set, becomes a Retry-After header (a refusal for lack of room: the client may try again that much later)."""

    def __init__(self, status: int, code: str, message: str, retry_after_s: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s


def error_response(http_status: int, code: str, message: str, **extra: object) -> tuple[Response, int]:
    """The error body, with any extra top-level fields (e.g. /readyz's status and reason)."""
    return jsonify({"error": {"code": code, "message": message}, **extra}), http_status


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(ImageError, _image_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)


def _api_error(error: ApiError):
    message = shorten(error.message, MESSAGE_LIMIT)
    if error.status < 500:
        logger.info("refused: %s: %s", error.code, message)
    response, status = error_response(error.status, error.code, message)
    if error.retry_after_s is not None:
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response, status


def _image_error(error: ImageError):
    if isinstance(error, VideoTooLargeError):
        return _api_error(ApiError(413, "video_too_large", str(error)))
    if isinstance(error, VideoError):
        return _api_error(ApiError(400, "invalid_video", str(error)))
    if isinstance(error, ImageTooLargeError):
        return _api_error(ApiError(413, "image_too_large", str(error)))
    return _api_error(ApiError(400, "invalid_image", str(error)))


def _http_error(error: HTTPException):
    status = error.code or 500
    if status < 400:  # routing redirects (a missing trailing slash) are answers, not errors
        return error
    code = HTTP_CODES.get(status, (error.name or "error").lower().replace(" ", "_"))
    response, status = error_response(status, code, error.description or error.name)
    if getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response, status


def _unexpected_error(error: Exception):
    logger.exception("unhandled error while answering the request")
    return error_response(500, "internal_error", "the server failed to answer this request; it has been logged")
