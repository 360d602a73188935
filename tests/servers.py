"""Real servers for tests, without the free-port-then-close race: gunicorn binds port 0 and the test reads the
port it got from gunicorn's "Listening at: http://HOST:PORT" line. A command that must name its port (e.g.
`deepfake-detector serve --port N`) gets a free one, and another when something took it in between. start_proxy
puts the repository's nginx configuration in front of a server, as the container does, run as the current user
from a temporary folder."""
from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from deepfake_detector.deploy.proxy_config import write_proxy_config
from deepfake_detector.serving.settings import load_serving_config, repository_root

LISTENING = re.compile(r"Listening at: https?://\S+?:(\d+)")
PORT_TAKEN = "Connection in use"
NGINX_PORT_TAKEN = "Address already in use"
# Debian installs nginx in /usr/sbin, which an ordinary user's PATH may lack.
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin:/sbin")
NO_NGINX = "nginx is not installed (make setup-browser installs it; Debian: apt-get install nginx)"
START_TIMEOUT_S = 60


class PortTakenError(RuntimeError):
    """The server could not bind the port it was told to use: something else holds it."""


@dataclass
class Server:
    """A started server process, the local URL it answers on, and the file its output goes to."""

    process: subprocess.Popen
    port: int
    log_file: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self, characters: int | None = None) -> str:
        text = self.log_file.read_text(errors="replace")
        return text if characters is None else text[-characters:]

    def wait_for(self, path: str = "/healthz", status: int = 200, timeout_s: float = START_TIMEOUT_S,
                  headers: Mapping[str, str] | None = None) -> requests.Response:
        """The first answer to GET path with this status; AssertionError with the log's tail if the process
        exits or none comes in time."""
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.process.poll() is None, f"the server exited with {self.process.returncode}:\n{self.log(4000)}"
            try:
                response = requests.get(self.base_url + path, headers=dict(headers or {}), timeout=5)
                if response.status_code == status:
                    return response
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, f"GET {path} never answered {status}:\n{self.log(4000)}"
            time.sleep(0.3)

    def stop(self, stop_signal: int = signal.SIGTERM, timeout_s: float = 30) -> int:
        """Send stop_signal, wait up to timeout_s, kill if still running; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(stop_signal)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(command: Sequence[str], log_file: Path, *, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None, timeout_s: float = START_TIMEOUT_S) -> Server:
    """Run a gunicorn command (bound to port 0, or to a port it names) and return once it listens.

    Raises PortTakenError when the port it names is in use, AssertionError when it exits or never
    listens within timeout_s (with its log's tail).
    """
    with open(log_file, "wb") as log:
        process = subprocess.Popen(list(command), cwd=cwd, env=dict(env) if env is not None else None, stdout=log,
                                   stderr=subprocess.STDOUT)
    server = Server(process, 0, Path(log_file))
    deadline = time.monotonic() + timeout_s
    while True:
        text = server.log()
        if found := LISTENING.search(text):
            server.port = int(found.group(1))
            return server
        if PORT_TAKEN in text:
            server.stop(signal.SIGKILL)
            raise PortTakenError(text[-2000:])
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop(signal.SIGKILL)
            raise AssertionError(f"the server never listened (exit status {process.returncode}):\n{text[-4000:]}")
        time.sleep(0.1)


def start_on_a_free_port(command_for: Callable[[int], Sequence[str]], log_file: Path, *, attempts: int = 5,
                         **options) -> Server:
    """start_server(command_for(port), ...) on a port free a moment ago; another one if it was taken meanwhile."""
    for _ in range(attempts - 1):
        try:
            return start_server(command_for(free_port()), log_file, **options)
        except PortTakenError:
            continue
    return start_server(command_for(free_port()), log_file, **options)


def free_port() -> int:
    """A loopback port no process held a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_proxy(upstream: Server, run_dir: Path, *, attempts: int = 5, timeout_s: float = 15) -> Server:
    """nginx with deploy/nginx/nginx.conf.template in front of upstream, listening on a free loopback port; its pid
    file, body buffers, config and error log (the returned Server's log) all in run_dir. The body cap is the
    repository's serve.max_request_mb, as in the container."""
    assert NGINX is not None, NO_NGINX
    max_body = load_serving_config(repository_root()).max_request_bytes
    for _ in range(attempts - 1):
        try:
            return _start_nginx(upstream, run_dir, max_body, timeout_s)
        except PortTakenError:
            continue
    return _start_nginx(upstream, run_dir, max_body, timeout_s)


def _start_nginx(upstream: Server, run_dir: Path, max_body: int, timeout_s: float) -> Server:
    port = free_port()
    error_log = run_dir / "error.log"
    config = write_proxy_config(repository_root(), run_dir, listen=f"127.0.0.1:{port}",
                                upstream=f"127.0.0.1:{upstream.port}", max_body_bytes=max_body,
                                error_log=str(error_log))
    with open(run_dir / "nginx.out", "wb") as output:
        process = subprocess.Popen([NGINX, "-p", str(run_dir), "-c", str(config), "-e", str(error_log),
                                    "-g", "daemon off;"], stdout=output, stderr=subprocess.STDOUT)
    proxy = Server(process, port, error_log)
    deadline = time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                if process.poll() is None:
                    return proxy
        except OSError:
            time.sleep(0.05)
    proxy.stop(signal.SIGKILL)
    text = (error_log.read_text(errors="replace") if error_log.exists() else "") + \
        (run_dir / "nginx.out").read_text(errors="replace")
    if NGINX_PORT_TAKEN in text:
        raise PortTakenError(text[-2000:])
    raise AssertionError(f"nginx never listened (exit status {process.returncode}):\n{text[-4000:]}")
