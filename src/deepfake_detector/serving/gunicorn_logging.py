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
        if not getattr(self, "access_log_enabled", True):
            return
        atoms = self.atoms(resp, req, environ, request_time)
        method, path = shorten(atoms["m"] or ""), shorten(atoms["U"] or "")
        fields = {
            "event": "access",
            "request_id": atoms.get("{x-request-id}o"),
            "remote": atoms["h"],
            "method": method,
            "path": path,
            "query": shorten(atoms["q"] or "") or None,
            "status": int(atoms["s"]) if str(atoms["s"]).isdigit() else atoms["s"],
            "bytes": atoms["B"],
            "duration_ms": round(atoms["D"] / 1000.0, 3),
            "user_agent": shorten(atoms["a"]),
        }
        try:
            self.access_log.info("%s %s %s", method, path, atoms["s"], extra=fields)
        except Exception:
            self.exception("cannot write the access log entry")
