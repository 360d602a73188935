"""Section 6: the API as clients see it: POST /api/v1/predict of one 300x300 JPEG through a real
gunicorn on 127.0.0.1, and through the full stack as the container runs it (nginx in front of that
gunicorn, deploy/nginx/nginx.conf.template), beside the same decode + predict called in-process (the
bare cost) in the same run, so that every figure is also a ratio to the bare cost. The old
load-the-model-per-request way is the inference section's `load per request` row.
"""
from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

from deepfake_detector.benchmarks.machine import cpu_count
from deepfake_detector.benchmarks.settings import BenchSettings
from deepfake_detector.benchmarks.timing import ratio, summarize_ms, time_calls, time_interleaved
from deepfake_detector.serving.concurrency import THREADS_ENV, WORKERS_ENV

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 180.0
WORKERS = 2      # gunicorn.conf.py's defaults on a 2-core machine
THREADS = 8
FULL_STACK_CLIENTS = 8
# The throughput target: this share of what the cores would give if every one ran bare decode + predicts back to back.
THROUGHPUT_TARGET_SHARE = 0.8
NGINX_SEARCH_PATH = "/usr/sbin:/usr/local/sbin:/sbin"
PREDICT_PATH = "/api/v1/predict"
NO_NGINX = "nginx is not installed (Debian: apt-get install nginx; make setup-browser does it as root)"
BARE_WSGI_APP = "deepfake_detector.benchmarks.bare_wsgi_app:app"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gunicorn_server(root: Path, model_file: Path, export_dir: Path, log_file: Path,
                    app: str = "app:app") -> Iterator[str]:
    """A gunicorn serving app (default app.py's) with the default backend and face cropping off; yields its base
    URL once GET /readyz answers 200."""
    import requests

    port = _free_port()
    env = {**os.environ, "DEEPFAKE_DETECTOR_MODEL": str(model_file), "DEEPFAKE_DETECTOR_EXPORT_DIR": str(export_dir),
           "DEEPFAKE_DETECTOR_FACE_DETECTOR": "off", "WEB_CONCURRENCY": str(WORKERS),
           "GUNICORN_THREADS": str(THREADS), "PORT": str(port), "LOG_LEVEL": "warning"}
    env.pop("DEEPFAKE_DETECTOR_BACKEND", None)
    command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
               "--access-logfile", "-", app]
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


@dataclasses.dataclass(frozen=True)
class RequestBody:
    """What a client uploads: one JPEG as a multipart `file` field (what browsers and `curl -F` send) or as the raw
    body (`Content-Type: image/jpeg`)."""

    kind: str           # "multipart" or "raw"
    jpeg: bytes

    @property
    def path(self) -> str:
        return PREDICT_PATH if self.kind == "multipart" else f"{PREDICT_PATH}?filename=face.jpg"

    def encode(self) -> tuple[str, bytes]:
        """(content type, body). A form gets a fresh boundary each time, as browsers and `requests` give it: the
        server's multipart parser compiles a pattern per boundary, a cost a fixed boundary would hide."""
        if self.kind == "raw":
            return "image/jpeg", self.jpeg
        boundary = secrets.token_hex(16)
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"face.jpg\"\r\n"
                "Content-Type: image/jpeg\r\n\r\n").encode()
        return f"multipart/form-data; boundary={boundary}", head + self.jpeg + f"\r\n--{boundary}--\r\n".encode()


def request_bodies(jpeg: bytes) -> dict[str, RequestBody]:
    return {kind: RequestBody(kind, jpeg) for kind in ("multipart", "raw")}


class KeepAliveClient:
    """One HTTP/1.1 keep-alive connection posting one image with http.client.

    The load generator shares the machine's cores with the server, so it must cost little: `requests` spends about
    1 ms of CPU per call building the request and parsing the answer, which on 2 cores is CPU taken from the
    server.
    A connection the server closed (keep-alive timeout, a worker restarting) is opened again once.
    """

    def __init__(self, url: str, body: RequestBody) -> None:
        parts = urllib.parse.urlsplit(url)
        self._address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._body = body
        self._connection: http.client.HTTPConnection | None = None

    def post(self) -> tuple[int, bytes]:
        """(status, body) of one POST."""
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = http.client.HTTPConnection(*self._address, timeout=60)
            try:
                content_type, data = self._body.encode()
                self._connection.request("POST", self._body.path, body=data, headers={
                    "Content-Type": content_type, "Content-Length": str(len(data))})
                response = self._connection.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> KeepAliveClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _answered(client: KeepAliveClient) -> dict:
    """One prediction's first result; anything but a 200 fails the benchmark with the server's message."""
    status, body = client.post()
    if status != 200:
        raise RuntimeError(f"POST {PREDICT_PATH} answered {status}: {body[:300]!r}")
    return json.loads(body)["results"][0]


def _post_until_answered(client: KeepAliveClient) -> int:
    """One prediction, sent again at once after each 503 (admission control refusing a request beyond the worker's
    slots); returns how many refusals it took."""
    refusals = 0
    while True:
        status, body = client.post()
        if status == 200:
            return refusals
        if status != 503:
            raise RuntimeError(f"POST {PREDICT_PATH} answered {status}: {body[:300]!r}")
        refusals += 1


def _concurrent(url: str, body: RequestBody, clients: int, requests_per_client: int) -> dict:
    """Clients posting at once, each on its own keep-alive connection: throughput and latency under load. A request
    refused with 503 (every slot of its worker taken) is sent again at once and counted in `refused`; its latency
    runs until it is answered."""
    barrier = threading.Barrier(clients + 1)
    latencies: list[float] = []
    refused: list[int] = []
    errors: list[Exception] = []
    lock = threading.Lock()

    def client() -> None:
        with KeepAliveClient(url, body) as connection:
            try:
                _post_until_answered(connection)
                barrier.wait()
                for _ in range(requests_per_client):
                    start = time.perf_counter()
                    refusals = _post_until_answered(connection)
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
    return {"clients": clients, "body": body.kind, "requests": len(latencies),
            "requests_per_s": len(latencies) / elapsed, "refused": sum(refused), **summarize_ms(latencies)}


def _median_run(runs: list[dict]) -> dict:
    """The run with the median share of its target, and every run's requests/s and share beside it."""
    ordered = sorted(runs, key=lambda run: run["vs_target"])
    return {**ordered[len(ordered) // 2], "runs_requests_per_s": [run["requests_per_s"] for run in runs],
            "runs_vs_target": [run["vs_target"] for run in runs]}


def _bare_service(config, model_file: Path, export_dir: Path, server_shape: dict[str, str]):
    """A warmed-up in-process DetectionService whose interpreters get the threads a process of this shape gets
    (serving/concurrency.py: {} is one process alone, WEB_CONCURRENCY/GUNICORN_THREADS a gunicorn worker), and
    that thread count."""
    from deepfake_detector.serving.concurrency import plan_threads
    from deepfake_detector.serving.service import DetectionService

    threads = plan_threads(config, environ=server_shape).interpreter_threads
    service = DetectionService.from_config(dataclasses.replace(config, num_threads=threads), environ={
        "DEEPFAKE_DETECTOR_MODEL": str(model_file), "DEEPFAKE_DETECTOR_EXPORT_DIR": str(export_dir),
        "DEEPFAKE_DETECTOR_FACE_DETECTOR": "off"})
    return service, threads


class _SingleClient:
    """One keep-alive client whose calls are timed in the interleaved rounds, keeping the server's own
    `timings_ms.total` of each answer."""

    def __init__(self, url: str, body: RequestBody) -> None:
        self.client = KeepAliveClient(url, body)
        self.body = body
        self.server_side: list[float] = []

    def __call__(self) -> None:
        self.server_side.append(_answered(self.client)["timings_ms"]["total"] / 1000.0)

    def summary(self, samples: list[float], warmup: int) -> dict:
        return {**summarize_ms(samples), "body": self.body.kind,
                "server_side": summarize_ms(self.server_side[warmup:])}


def measure_serving(model_file: Path, export_dir: Path, jpeg_file: Path, scratch: Path,
                    settings: BenchSettings) -> dict:
    """API latency of one client through gunicorn and through nginx + gunicorn, with each body, beside the bare
    in-process call they wrap, all timed in interleaved rounds (timing.time_interleaved); then the throughput of
    several clients through gunicorn and of FULL_STACK_CLIENTS through the full stack.

    The bare call is timed twice: with a gunicorn worker's interpreter threads (serving/concurrency.py) and with
    all the cores (one process alone, as `deepfake-detector predict` runs). The ratios and the throughput target
    take the worker's: it is the same inference the server runs, and cores x 1000 / bare ms is what the cores give
    when each runs one such inference after another.

    The app and its settings come from the checkout this package runs from (app.py, gunicorn.conf.py,
    params.yaml's serve section); the model and export folder are the ones being benchmarked.
    """
    from deepfake_detector.config import ConfigurationManager
    from deepfake_detector.serving.settings import repository_root

    root = repository_root()
    jpeg = jpeg_file.read_bytes()
    bodies = request_bodies(jpeg)
    config = ConfigurationManager(root=root).get_serving_config()
    all_cores_service, all_cores_threads = _bare_service(config, model_file, export_dir, {})
    worker_service, worker_threads = _bare_service(config, model_file, export_dir,
                                                   {WORKERS_ENV: str(WORKERS), THREADS_ENV: str(THREADS)})

    with contextlib.ExitStack() as stack:
        url = stack.enter_context(gunicorn_server(root, model_file, export_dir, scratch / "gunicorn.log"))
        proxy_url = None
        if find_nginx() is None:
            logger.warning("Full stack not measured: %s", NO_NGINX)
        else:
            proxy_url = stack.enter_context(nginx_proxy(root, int(url.rsplit(":", 1)[1]), scratch))
        clients = {f"gunicorn {kind}": _SingleClient(url, body) for kind, body in bodies.items()}
        if proxy_url:
            clients.update({f"full stack {kind}": _SingleClient(proxy_url, body) for kind, body in bodies.items()})
        for client in clients.values():
            stack.callback(client.client.close)
        samples = time_interleaved({
            "bare": lambda: worker_service.analyze(jpeg, "face.jpg"),
            "bare all cores": lambda: all_cores_service.analyze(jpeg, "face.jpg"),
            **clients}, settings.api_reps, settings.warmup)
        bare = {**summarize_ms(samples["bare"]), "interpreter_threads": worker_threads}
        bare_all_cores = {**summarize_ms(samples["bare all cores"]), "interpreter_threads": all_cores_threads}
        single = {name: client.summary(samples[name], settings.warmup) for name, client in clients.items()}
        concurrent = _concurrent(url, bodies["multipart"], settings.thread_clients, settings.thread_requests)
        def bare_burst_p50_ms() -> float:
            return summarize_ms(time_calls(lambda: worker_service.analyze(jpeg, "face.jpg"),
                                           settings.bare_burst_reps, settings.warmup))["p50_ms"]

        full_stack = ({"skipped": NO_NGINX} if proxy_url is None else _full_stack(
            proxy_url, bodies, single, settings, bare["p50_ms"], bare_burst_p50_ms))
    if proxy_url:
        full_stack["bare_wsgi"] = _bare_wsgi_ceiling(root, model_file, export_dir, scratch, bodies["raw"], settings,
                                                     bare_burst_p50_ms)
    api, api_raw = single["gunicorn multipart"], single["gunicorn raw"]
    logger.info("API p50 %.2f ms (server-side %.2f ms), raw body %.2f ms, vs bare %.2f ms (%d interpreter threads; "
                "%.2f ms with %d)", api["p50_ms"], api["server_side"]["p50_ms"], api_raw["p50_ms"], bare["p50_ms"],
                worker_threads, bare_all_cores["p50_ms"], all_cores_threads)
    return {"backend": worker_service.backend, "variant": worker_service.variant, "workers": WORKERS,
            "threads": THREADS, "image": "300x300 JPEG", "interleaved": True, "bare_in_process": bare,
            "bare_all_cores": bare_all_cores, "api_single_client": api, "api_raw_single_client": api_raw,
            "api_server_side": api["server_side"], "api_concurrent": concurrent,
            "api_p50_vs_bare_p50": ratio(api["p50_ms"], bare["p50_ms"]), "full_stack": full_stack}


def _throughput_run(url: str, body: RequestBody, settings: BenchSettings, bare_burst_p50_ms: Callable[[], float]
                    ) -> dict:
    """FULL_STACK_CLIENTS clients posting body, held to a target from a burst of bare calls timed just before."""
    adjacent_bare = bare_burst_p50_ms()
    target = THROUGHPUT_TARGET_SHARE * cpu_count() * 1000.0 / adjacent_bare
    run = _concurrent(url, body, FULL_STACK_CLIENTS, settings.full_stack_requests)
    return {**run, "bare_p50_ms": adjacent_bare, "target_requests_per_s": target,
            "vs_target": ratio(run["requests_per_s"], target)}


def _bare_wsgi_ceiling(root: Path, model_file: Path, export_dir: Path, scratch: Path, body: RequestBody,
                       settings: BenchSettings, bare_burst_p50_ms: Callable[[], float]) -> dict:
    """The throughput runs again, raw bodies, against the same gunicorn and nginx serving bare_wsgi_app instead of
    app.py: the most the server, the proxy and the load generator leave for any app on this machine. A failure here
    is reported as skipped: the app's own figures are already measured."""
    try:
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(gunicorn_server(root, model_file, export_dir,
                                                      scratch / "gunicorn-bare-wsgi.log", app=BARE_WSGI_APP))
            proxy_url = stack.enter_context(nginx_proxy(root, int(url.rsplit(":", 1)[1]), scratch / "bare-wsgi"))
            runs = [_throughput_run(proxy_url, body, settings, bare_burst_p50_ms)
                    for _ in range(settings.throughput_runs)]
    except (RuntimeError, OSError) as error:
        logger.warning("The server's ceiling was not measured: %s", error)
        return {"skipped": str(error)}
    ceiling = _median_run(runs)
    logger.info("Bare WSGI app behind the same stack, raw body, %d clients: %.1f requests/s, %.0f%% of the target "
                "%.1f", FULL_STACK_CLIENTS, ceiling["requests_per_s"], 100 * ceiling["vs_target"],
                ceiling["target_requests_per_s"])
    return ceiling


def _full_stack(url: str, bodies: dict[str, RequestBody], single: dict[str, dict], settings: BenchSettings,
                bare_p50_ms: float, bare_burst_p50_ms: Callable[[], float]) -> dict:
    """Through nginx in front of the running gunicorn: the one-client latencies timed with the others, then the
    throughput of FULL_STACK_CLIENTS clients with each body against the target (the median of
    settings.throughput_runs runs of each, alternated).

    Each run's target comes from a burst of bare calls timed just before it, with the server idle: on a shared
    host the cores' speed drifts from minute to minute, and a target timed minutes earlier would measure the
    drift as much as the server."""
    cores = cpu_count()
    one, one_raw = single["full stack multipart"], single["full stack raw"]
    runs: dict[str, list[dict]] = {"multipart": [], "raw": []}
    for _ in range(settings.throughput_runs):  # alternated, so that a busy spell does not fall on one body only
        for kind in runs:
            runs[kind].append(_throughput_run(url, bodies[kind], settings, bare_burst_p50_ms))
    concurrent, concurrent_raw = _median_run(runs["multipart"]), _median_run(runs["raw"])
    logger.info("Full stack p50 %.2f ms (%.2fx bare), raw body %.2f ms; %d clients: %.1f requests/s, %.0f%% of the "
                "target %.1f", one["p50_ms"], one["p50_ms"] / bare_p50_ms, one_raw["p50_ms"], FULL_STACK_CLIENTS,
                concurrent["requests_per_s"], 100 * concurrent["vs_target"], concurrent["target_requests_per_s"])
    return {"single_client": one, "single_client_raw": one_raw,
            "p50_vs_bare_p50": ratio(one["p50_ms"], bare_p50_ms),
            "raw_p50_vs_bare_p50": ratio(one_raw["p50_ms"], bare_p50_ms),
            "concurrent": concurrent, "concurrent_raw": concurrent_raw, "cores": cores,
            "target_requests_per_s": concurrent["target_requests_per_s"], "target_share": THROUGHPUT_TARGET_SHARE,
            "throughput_vs_target": concurrent["vs_target"],
            "raw_throughput_vs_target": concurrent_raw["vs_target"]}
