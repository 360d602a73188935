"""Section 4: what thread safety costs a threaded server: per-thread interpreters vs one behind a lock.

Clients send single-image requests, as web requests arrive; throughput is requests served per
second of wall time with all clients running at once.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np

from deepfake_detector.benchmarks.latency import random_images
from deepfake_detector.benchmarks.settings import BenchSettings
from deepfake_detector.benchmarks.timing import ratio, summarize_ms

logger = logging.getLogger(__name__)

MODES = {"per_thread_interpreters": True, "single_interpreter_locked": False}


def run_clients(predictor, image: np.ndarray, clients: int, requests: int) -> dict:
    """Start `clients` threads together, each sending `requests` predictions; latency and throughput."""
    barrier = threading.Barrier(clients + 1)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[Exception] = []

    def client(index: int) -> None:
        try:
            predictor.predict(image)  # untimed: creates this thread's interpreter where there is one each
            barrier.wait()
            for _ in range(requests):
                start = time.perf_counter()
                predictor.predict(image)
                latencies[index].append(time.perf_counter() - start)
        except Exception as error:  # reported in the caller's thread, not lost in this one
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    total = clients * requests
    return {"clients": clients, "requests": total, "wall_s": wall, "requests_per_s": total / wall,
            "latency": summarize_ms([s for samples in latencies for s in samples])}


def measure_threads(tflite_file: Path, image_size: int, num_threads: int, settings: BenchSettings) -> dict:
    """Both modes with num_threads interpreter threads each: the cores divided by the clients, as serving sizes
    them (serving/concurrency.py), so the clients share the cores instead of fighting over them."""
    from deepfake_detector.inference.predictor import TFLitePredictor

    image = random_images(1, image_size)
    modes = {}
    for mode, per_thread in MODES.items():
        predictor = TFLitePredictor(tflite_file, num_threads=num_threads, variant="float32",
                                    per_thread_interpreters=per_thread)
        modes[mode] = run_clients(predictor, image, settings.thread_clients, settings.thread_requests)
        logger.info("Threads, %s: %.1f requests/s with %d clients (p50 %.2f ms)", mode,
                    modes[mode]["requests_per_s"], settings.thread_clients, modes[mode]["latency"]["p50_ms"])
    return {"model": str(tflite_file), "interpreter_threads": num_threads, "modes": modes,
            "per_thread_over_locked": ratio(modes["per_thread_interpreters"]["requests_per_s"],
                                            modes["single_interpreter_locked"]["requests_per_s"])}
