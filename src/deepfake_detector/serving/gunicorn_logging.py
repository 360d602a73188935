"""gunicorn's own logs as JSON lines: its error log through JsonFormatter, and one access entry per
request with method, path, status, size, duration and the request id the app echoed. What the client wrote
(path, query, user agent) is cut short, as in every other log line.

Named in gunicorn.conf.py as `logger_class`; imported only by gunicorn.
"""
from __future__ import annotations

import logging.handlers

from gunicorn.glogging import Logger

from deepfake_detector.serving.request_logging import JsonFormatter
from deepfake_detector.utils.text import shorten


class JsonLogger(Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        formatter = JsonFormatter()
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if not isinstance(handler, logging.handlers.SysLogHandler):
                    handler.setFormatter(formatter)

    def access(self, resp, req, environ, request_time) -> None:
        """One JSON line per answered request. Reads the few fields it writes straight from the WSGI environ and
        the response: gunicorn's atoms() copies every header and environ entry and formats a timestamp for each
        request, a tenth of a busy worker's Python time."""
        if not getattr(self, "access_log_enabled", True):
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        method, path = shorten(environ.get("REQUEST_METHOD") or ""), shorten(environ.get("PATH_INFO") or "")
        fields = {
            "event": "access",
            "request_id": _response_header(resp, "x-request-id"),
            "remote": environ.get("REMOTE_ADDR", "-"),
            "method": method,
            "path": path,
            "query": shorten(environ.get("QUERY_STRING") or "") or None,
            "status": int(status) if str(status).isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000.0, 3),
            "user_agent": shorten(environ.get("HTTP_USER_AGENT", "-")),
        }
        try:
            self.access_log.info("%s %s %s", method, path, status, extra=fields)
        except Exception:
            self.exception("cannot write the access log entry")


def _response_header(resp, name: str) -> str | None:
    """The value of a response header (name in lower case), or None."""
    headers = resp.headers.items() if hasattr(resp.headers, "items") else resp.headers
    return next((value for key, value in headers if key.lower() == name), None)
