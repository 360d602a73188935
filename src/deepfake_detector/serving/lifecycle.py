"""The per-process model slot: loaded once at start-up; while no model is loaded (none exists yet, or loading or
warming it up failed in any way) the app still runs, says why it is not ready, and retries now and then in the
background (e.g. after `make run`). The reason it gives is public: file names, never host paths or hashes."""
from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

from deepfake_detector.contracts.errors import DeepfakeDetectorError
from deepfake_detector.serving.service import DetectionService
from deepfake_detector.utils.text import shorten

logger = logging.getLogger(__name__)

RETRY_INTERVAL_S = 30.0
REASON_LIMIT = 400
# A path (anything with a slash or backslash in it) and a hex digest of 12 characters or more.
_PATH = re.compile(r"[^\s'\"()\[\],;]*[/\\][^\s'\"()\[\],;]*")
_DIGEST = re.compile(r"\b[0-9a-fA-F]{12,}\b")


class ServiceHolder:
    """Holds the DetectionService, or the reason there is none yet."""

    def __init__(self, load: Callable[[], DetectionService], retry_interval_s: float | None = RETRY_INTERVAL_S):
        self._load = load
        self._retry_interval_s = retry_interval_s
        self._lock = threading.Lock()
        self._loading = False
        self._last_attempt = 0.0
        self.service: DetectionService | None = None
        self.reason = "the model has not been loaded yet"

    @classmethod
    def with_service(cls, service: DetectionService) -> ServiceHolder:
        holder = cls(lambda: service, retry_interval_s=None)
        holder.service = service
        return holder

    @property
    def is_ready(self) -> bool:
        return self.current() is not None

    def load_now(self) -> None:
        """Load in the calling thread (start-up): afterwards service is set, or reason says why not.

        Any exception counts (a warm-up RuntimeError, an OSError while hashing, an ImportError for a backend this
        image lacks): the worker must keep answering /healthz, not exit and restart-loop the container.
        """
        self._last_attempt = time.monotonic()
        try:
            service = self._load()
        except DeepfakeDetectorError as error:
            # Expected (no model yet, a bad card): its message is the whole story, no traceback needed.
            self.reason = public_reason(error)
            logger.warning("serving without a model: %s", error)
            return
        except Exception as error:
            self.reason = public_reason(error)
            logger.exception("serving without a model: loading it failed")
            return
        with self._lock:
            self.service = service

    def current(self) -> DetectionService | None:
        """The service, or None; when None, start a background reload if the last try is old enough."""
        service = self.service
        if service is None and self._retry_interval_s is not None:
            self._maybe_retry()
        return service

    def _maybe_retry(self) -> None:
        with self._lock:
            if self._loading or time.monotonic() - self._last_attempt < self._retry_interval_s:
                return
            self._loading = True
        threading.Thread(target=self._retry, name="model-reload", daemon=True).start()

    def _retry(self) -> None:
        try:
            self.load_now()
        finally:
            with self._lock:
                self._loading = False


def public_reason(error: Exception) -> str:
    """Why no model is loaded, fit for /readyz: the project's own errors by their message with every path cut
    to its file name and every digest withheld; anything else by its type (the log has the rest)."""
    if isinstance(error, DeepfakeDetectorError):
        text = _DIGEST.sub("<digest>", _PATH.sub(_file_name, str(error)))
        return shorten(f"no model loaded: {text}", REASON_LIMIT)
    return f"model failed to load: {type(error).__name__}{_detail(error)}; see the server log"


def _detail(error: Exception) -> str:
    """What an exception may say without naming a path: a missing module, an operating-system error's text."""
    if isinstance(error, ImportError) and error.name:
        return f" (module {shorten(error.name)!r})"
    if isinstance(error, OSError) and error.strerror:
        return f" ({shorten(error.strerror)})"
    return ""


def _file_name(match: re.Match) -> str:
    return re.split(r"[/\\]", match.group(0).rstrip("/\\"))[-1] or "/"
