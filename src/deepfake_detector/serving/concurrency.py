"""How much work one serving process runs at once, and so how many threads each TFLite interpreter gets.

Every inference in flight has its own interpreter. Giving each of them every core (the old default) makes
workers x inferences interpreters fight over the same cores; instead the cores are shared out:
interpreter threads = cores // (workers x inferences per worker), at least 1.

A worker's threads are shared out the same way: one stays free for health checks, up to serve.max_queued wait
for a prediction slot (each holds a thread, not yet its decoded image), and the rest run predictions.

The server's shape comes from the environment gunicorn.conf.py reads: WEB_CONCURRENCY (workers) and
GUNICORN_THREADS (threads per worker). Where they are unset (the Flask dev server, the predict command,
tests) the process is one worker running one inference at a time.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from deepfake_detector.config.entities import ServingConfig
from deepfake_detector.contracts.errors import ConfigError
from deepfake_detector.utils.cpus import usable_cores

WORKERS_ENV = "WEB_CONCURRENCY"
THREADS_ENV = "GUNICORN_THREADS"


@dataclass(frozen=True)
class WorkerShape:
    """How one worker's prediction requests are admitted: at most max_in_flight run, at most max_queued wait."""

    max_in_flight: int
    max_queued: int
    threads: int  # the worker's threads (GUNICORN_THREADS), one of which health checks need


def worker_shape(config: ServingConfig, environ: Mapping[str, str] | None = None) -> WorkerShape:
    """The slots and the queue of one worker with GUNICORN_THREADS threads. One thread stays free for health checks
    and the others are for predictions. The queue gets serve.max_queued of them, but never the last one, which must
    run; serve.max_in_flight (null: the threads the queue leaves) runs at once."""
    threads = _positive(THREADS_ENV, os.environ if environ is None else environ)
    prediction_threads = max(1, threads - 1)
    if config.max_in_flight is not None:
        return WorkerShape(config.max_in_flight,
                           min(config.max_queued, max(0, prediction_threads - config.max_in_flight)), threads)
    queued = min(config.max_queued, prediction_threads - 1)
    return WorkerShape(prediction_threads - queued, queued, threads)


def inferences_per_worker(config: ServingConfig, environ: Mapping[str, str] | None = None) -> int:
    """Predictions one worker runs at once (worker_shape's slots)."""
    return worker_shape(config, environ).max_in_flight


@dataclass(frozen=True)
class ThreadPlan:
    """The interpreter threads of every inference, and the arithmetic (or the setting) behind the number."""

    interpreter_threads: int
    reason: str


def plan_threads(config: ServingConfig, environ: Mapping[str, str] | None = None,
                 cores: int | None = None) -> ThreadPlan:
    """serve.num_threads when set, else this process's share of the usable cores (see the module docstring)."""
    if config.num_threads is not None:
        return ThreadPlan(config.num_threads, "serve.num_threads")
    environ = os.environ if environ is None else environ
    cores = usable_cores() if cores is None else cores
    workers = _positive(WORKERS_ENV, environ)
    inferences = inferences_per_worker(config, environ)
    threads = max(1, cores // (workers * inferences))
    return ThreadPlan(threads, f"{cores} usable cores // ({workers} workers x {inferences} inferences per worker)")


def _positive(variable: str, environ: Mapping[str, str]) -> int:
    """The variable's whole number, 1 when unset or empty; a ConfigError naming it otherwise."""
    value = environ.get(variable, "").strip()
    if not value:
        return 1
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigError(f"environment: {variable}={value!r} is not a positive whole number")
    return number
