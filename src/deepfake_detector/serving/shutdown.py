"""Shutdown as readiness sees it: from the moment a worker gets SIGTERM, /readyz answers 503 while the requests
it already holds still finish, so whatever routes traffic stops sending more before the worker is gone.

gunicorn.conf.py's post_worker_init hook installs the handler in each worker; gunicorn's own graceful stop
(stop accepting, drain for graceful_timeout, exit) runs right after it, unchanged.
"""
from __future__ import annotations

import logging
import os
import signal
import threading

logger = logging.getLogger(__name__)

_stopping = threading.Event()


def is_stopping() -> bool:
    return _stopping.is_set()


def flag_stop_on_sigterm() -> None:
    """Put a handler that marks this process as stopping in front of the current SIGTERM handler (gunicorn's
    graceful stop in a worker). Call from the main thread; the previous handler still runs."""
    previous = signal.getsignal(signal.SIGTERM)

    def mark_then_stop(signum: int, frame) -> None:
        if not _stopping.is_set():
            _stopping.set()
            logger.info("SIGTERM: not ready from now on; finishing the requests in flight")
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, mark_then_stop)


def post_worker_init(worker) -> None:
    """gunicorn hook (named in gunicorn.conf.py): runs in each worker's main thread once its app is loaded, after
    gunicorn installed its own signal handlers, so the flag goes in front of gunicorn's graceful stop."""
    flag_stop_on_sigterm()
