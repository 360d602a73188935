"""The per-process model slot: loaded once at start-up; while no model exists the app still runs,
says why it is not ready, and retries now and then in the background (e.g. after `make run`)."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from deepfake_detector.contracts.errors import ModelError
from deepfake_detector.serving.service import DetectionService

logger = logging.getLogger(__name__)

RETRY_INTERVAL_S = 30.0


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
        """Load in the calling thread (start-up): afterwards service is set, or reason says why not."""
        self._last_attempt = time.monotonic()
        try:
            service = self._load()
        except ModelError as error:
            self.reason = f"no model loaded: {error}"
            logger.warning("serving without a model: %s", error)
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
        except Exception:  # a reload must never take the serving process down with it
            logger.exception("reloading the model failed")
        finally:
            with self._lock:
                self._loading = False
