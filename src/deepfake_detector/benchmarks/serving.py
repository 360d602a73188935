"""Section 6: the API as clients see it: POST /api/v1/predict of one 300x300 JPEG through a real
gunicorn on 127.0.0.1, and through the full stack as the container runs it (nginx in front of that
gunicorn, deploy/nginx/nginx.conf.template), beside the same decode + predict called in-process (the
bare cost) in the same run, so that every figure is also a ratio to the bare cost. The old
load-the-model-per-request way is the inference section's `load per request` row.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from deepfake_detector.benchmarks.machine import cpu_count
from deepfake_detector.benchmarks.settings import BenchSettings
from deepfake_detector.benchmarks.timing import ratio, summarize_ms, time_calls

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 180.0
WORKERS = 2      # gunicorn.conf.py's defaults on a 2-core machine
THREADS = 4
FULL_STACK_CLIENTS = 8
# The throughput target: this share of what the cores would give if every one ran bare decode + predicts back to back.
THROUGHPUT_TARGET_SHARE = 0.8
NGINX_SEARCH_PATH = "/usr/sbin:/usr/local/sbin:/sbin"
NO_NGINX = "nginx is not installed (Debian: apt-get install nginx; make setup-browser does it as root)"


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


def find_nginx() -> str | None:
    """nginx's path; Debian installs it in /usr/sbin, which an ordinary user's PATH may lack."""
    return shutil.which("nginx") or shutil.which("nginx", path=NGINX_SEARCH_PATH)


@contextlib.contextmanager
def nginx_proxy(root: Path, upstream_port: int, scratch: Path) -> Iterator[str]:
    """nginx with the repository's proxy configuration in front of 127.0.0.1:upstream_port; yields its base URL.
    Raises FileNotFoundError when nginx is not installed."""
    from deepfake_detector.deploy.proxy_config import write_proxy_config
    from deepfake_detector.serving.settings import load_serving_config

    nginx = find_nginx()
    if nginx is None:
        raise FileNotFoundError(NO_NGINX)
    port = _free_port()
    run_dir = scratch / "nginx"
    config = write_proxy_config(root, run_dir, listen=f"127.0.0.1:{port}", upstream=f"127.0.0.1:{upstream_port}",
                                max_body_bytes=load_serving_config(root).max_request_bytes,
                                error_log=str(run_dir / "error.log"))
    proxy = subprocess.Popen([nginx, "-p", str(run_dir), "-c", str(config), "-e", str(run_dir / "error.log"),
                              "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proxy.poll() is not None:
                raise RuntimeError(f"nginx exited with {proxy.returncode}; see {run_dir / 'error.log'}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx not listening after 15 s; see {run_dir / 'error.log'}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)


def _post(session, url: str, jpeg: bytes) -> dict:
    response = session.post(f"{url}/api/v1/predict", files={"file": ("face.jpg", jpeg, "image/jpeg")}, timeout=60)
    response.raise_for_status()
    return response.json()["results"][0]


def _post_until_answered(session, url: str, jpeg: bytes) -> int:
    """One prediction, sent again at once after each 503 (admission control refusing a request beyond the worker's
    slots); returns how many refusals it took."""
    refusals = 0
    while True:
        response = session.post(f"{url}/api/v1/predict", files={"file": ("face.jpg", jpeg, "image/jpeg")},
                                timeout=60)
        if response.status_code != 503:
            response.raise_for_status()
            return refusals
        refusals += 1


def _concurrent(url: str, jpeg: bytes, clients: int, requests_per_client: int) -> dict:
    """Clients posting at once, each on its own keep-alive session: throughput and latency under load. A request
    refused with 503 (every slot of its worker taken) is sent again at once and counted in `refused`; its latency
    runs until it is answered."""
    import requests

    barrier = threading.Barrier(clients + 1)
    latencies: list[float] = []
    refused: list[int] = []
    errors: list[Exception] = []
    lock = threading.Lock()

    def client() -> None:
        with requests.Session() as session:
            try:
                _post_until_answered(session, url, jpeg)
                barrier.wait()
                for _ in range(requests_per_client):
                    start = time.perf_counter()
                    refusals = _post_until_answered(session, url, jpeg)
                    with lock:
                        latencies.append(time.perf_counter() - start)
                        refused.append(refusals)
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
            "refused": sum(refused), **summarize_ms(latencies)}


def measure_serving(model_file: Path, export_dir: Path, jpeg_file: Path, scratch: Path,
                    settings: BenchSettings) -> dict:
    """API latency through gunicorn (one client, then several), through nginx + gunicorn (one client, then
    FULL_STACK_CLIENTS), and the bare in-process call they wrap. The full-stack throughput is held against
    THROUGHPUT_TARGET_SHARE x cores x 1000 / bare p50 ms requests per second.

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
        full_stack = _full_stack(root, url, jpeg, scratch, settings, bare["p50_ms"])
    server = summarize_ms(server_side[settings.warmup:])
    logger.info("API p50 %.2f ms (server-side %.2f ms) vs bare %.2f ms", api["p50_ms"], server["p50_ms"],
                bare["p50_ms"])
    return {"backend": backend, "workers": WORKERS, "threads": THREADS, "image": "300x300 JPEG",
            "bare_in_process": bare, "api_single_client": api, "api_server_side": server,
            "api_concurrent": concurrent, "api_p50_vs_bare_p50": ratio(api["p50_ms"], bare["p50_ms"]),
            "full_stack": full_stack}


def _full_stack(root: Path, gunicorn_url: str, jpeg: bytes, scratch: Path, settings: BenchSettings,
                bare_p50_ms: float) -> dict:
    """The same requests through nginx in front of the running gunicorn: one client's latency, then the
    throughput of FULL_STACK_CLIENTS clients against the target; {"skipped": why} without nginx."""
    import requests

    if find_nginx() is None:
        logger.warning("Full stack not measured: %s", NO_NGINX)
        return {"skipped": NO_NGINX}
    cores = cpu_count()
    with nginx_proxy(root, int(gunicorn_url.rsplit(":", 1)[1]), scratch) as url:
        with requests.Session() as session:
            single = summarize_ms(time_calls(lambda: _post(session, url, jpeg), settings.single_reps,
                                             settings.warmup))
        concurrent = _concurrent(url, jpeg, FULL_STACK_CLIENTS, settings.thread_requests)
    target = THROUGHPUT_TARGET_SHARE * cores * 1000.0 / bare_p50_ms
    logger.info("Full stack p50 %.2f ms (%.2fx bare); %d clients: %.1f requests/s, target %.1f", single["p50_ms"],
                single["p50_ms"] / bare_p50_ms, FULL_STACK_CLIENTS, concurrent["requests_per_s"], target)
    return {"single_client": single, "p50_vs_bare_p50": ratio(single["p50_ms"], bare_p50_ms),
            "concurrent": concurrent, "cores": cores, "target_requests_per_s": target,
            "target_share": THROUGHPUT_TARGET_SHARE,
            "throughput_vs_target": ratio(concurrent["requests_per_s"], target)}
