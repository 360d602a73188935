"""Section 6: the API as clients see it: POST /api/v1/predict of one 300x300 JPEG through a real
gunicorn on 127.0.0.1, beside the same decode + predict called in-process (the bare cost) in the
same run. The old load-the-model-per-request way is the inference section's `load per request` row.
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from deepfake_detector.benchmarks.settings import BenchSettings
from deepfake_detector.benchmarks.timing import ratio, summarize_ms, time_calls

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 180.0
WORKERS = 2      # gunicorn.conf.py's defaults on a 2-core machine
THREADS = 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gunicorn_server(root: Path, model_file: Path, export_dir: Path, log_file: Path) -> Iterator[str]:
    """A gunicorn serving app:app with the default backend and face cropping off; yields its base URL."""
    import requests

    port = _free_port()
    env = {**os.environ, "DEEPFAKE_DETECTOR_MODEL": str(model_file), "DEEPFAKE_DETECTOR_EXPORT_DIR": str(export_dir),
           "DEEPFAKE_DETECTOR_FACE_DETECTOR": "off", "WEB_CONCURRENCY": str(WORKERS),
           "GUNICORN_THREADS": str(THREADS), "PORT": str(port), "LOG_LEVEL": "warning"}
    env.pop("DEEPFAKE_DETECTOR_BACKEND", None)
    command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
               "--access-logfile", "-", "app:app"]
    url = f"http://127.0.0.1:{port}"
    with open(log_file, "wb") as log:
        server = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"gunicorn exited with {server.returncode}; see {log_file}")
                with contextlib.suppress(requests.RequestException):
                    if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn not ready after {READY_TIMEOUT_S:.0f} s; see {log_file}")
                time.sleep(0.5)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


def _post(session, url: str, jpeg: bytes) -> dict:
    response = session.post(f"{url}/api/v1/predict", files={"file": ("face.jpg", jpeg, "image/jpeg")}, timeout=60)
    response.raise_for_status()
    return response.json()["results"][0]


def _concurrent(url: str, jpeg: bytes, clients: int, requests_per_client: int) -> dict:
    """Clients posting at once, each on its own keep-alive session: throughput and latency under load."""
    import requests

    barrier = threading.Barrier(clients + 1)
    latencies: list[float] = []
    errors: list[Exception] = []
    lock = threading.Lock()

    def client() -> None:
        with requests.Session() as session:
            try:
                _post(session, url, jpeg)
                barrier.wait()
                for _ in range(requests_per_client):
                    start = time.perf_counter()
                    _post(session, url, jpeg)
                    with lock:
                        latencies.append(time.perf_counter() - start)
            except Exception as error:  # surfaced below, not lost in the thread
                errors.append(error)
                barrier.abort()

    workers = [threading.Thread(target=client) for _ in range(clients)]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"concurrent API requests failed: {errors[0]}")
    return {"clients": clients, "requests": len(latencies), "requests_per_s": len(latencies) / elapsed,
            **summarize_ms(latencies)}


def measure_serving(model_file: Path, export_dir: Path, jpeg_file: Path, scratch: Path,
                    settings: BenchSettings) -> dict:
    """API latency through gunicorn (one client, then several) and the bare in-process call it wraps.

    The app and its settings come from the checkout this package runs from (app.py, gunicorn.conf.py,
    params.yaml's serve section); the model and export folder are the ones being benchmarked.
    """
    import requests

    from deepfake_detector.config import ConfigurationManager
    from deepfake_detector.serving.service import DetectionService
    from deepfake_detector.serving.settings import repository_root

    root = repository_root()
    jpeg = jpeg_file.read_bytes()
    config = ConfigurationManager(root=root).get_serving_config()
    service = DetectionService.from_config(config, environ={
        "DEEPFAKE_DETECTOR_MODEL": str(model_file), "DEEPFAKE_DETECTOR_EXPORT_DIR": str(export_dir),
        "DEEPFAKE_DETECTOR_FACE_DETECTOR": "off"})
    bare = summarize_ms(time_calls(lambda: service.analyze(jpeg, "face.jpg"), settings.single_reps,
                                   settings.warmup))
    backend = service.backend

    log_file = scratch / "gunicorn.log"
    with gunicorn_server(root, model_file, export_dir, log_file) as url, requests.Session() as session:
        server_side: list[float] = []

        def one_request() -> None:
            server_side.append(_post(session, url, jpeg)["timings_ms"]["total"] / 1000.0)

        api = summarize_ms(time_calls(one_request, settings.single_reps, settings.warmup))
        concurrent = _concurrent(url, jpeg, settings.thread_clients, settings.thread_requests)
    server = summarize_ms(server_side[settings.warmup:])
    logger.info("API p50 %.2f ms (server-side %.2f ms) vs bare %.2f ms", api["p50_ms"], server["p50_ms"],
                bare["p50_ms"])
    return {"backend": backend, "workers": WORKERS, "threads": THREADS, "image": "300x300 JPEG",
            "bare_in_process": bare, "api_single_client": api, "api_server_side": server,
            "api_concurrent": concurrent, "api_p50_vs_bare_p50": ratio(api["p50_ms"], bare["p50_ms"])}
