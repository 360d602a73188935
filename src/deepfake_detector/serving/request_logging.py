"""Structured logs: one JSON object per line, each carrying the request id of the request it is about.

The id comes from the client's X-Request-ID header when it is sane, else a new one is made; it is
echoed in the response's X-Request-ID header so a client can quote it.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid

from flask import Flask, Response, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# LogRecord's own attributes; anything else on a record came from `extra=` and is logged as a field.
_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


def register_request_ids(app: Flask) -> None:
    app.before_request(_assign_request_id)
    app.after_request(_echo_request_id)


def current_request_id() -> str | None:
    return g.get("request_id") if has_request_context() else None


def _assign_request_id() -> None:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex


def _echo_request_id(response: Response) -> Response:
    request_id = current_request_id()
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message", "request_id", ...extra fields, "exception"} per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            entry["request_id"] = request_id
        entry.update({key: value for key, value in vars(record).items() if key not in _RECORD_FIELDS})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_json_logging(level: str | int | None = None) -> None:
    """Route every logger to stderr as JSON lines; call once, from the serving entry point.

    The JSON lines carry no caller file, line or thread, so records skip computing them (the logging HOWTO's
    "Optimization" switches): a server writes at least one record per request. Process ids stay: gunicorn's
    syslog lines print them."""
    logging._srcfile = None  # noqa: SLF001 - the documented way to skip findCaller()
    logging.logThreads = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level or os.environ.get("DEEPFAKE_DETECTOR_LOG_LEVEL", "INFO"),
                        handlers=[handler], force=True)
    for noisy in ("urllib3", "PIL", "matplotlib", "h5py", "absl", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
