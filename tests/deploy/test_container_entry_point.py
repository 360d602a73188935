"""The image's entry point without Docker: the Dockerfile's CMD, WORKDIR and ENV, read from the file and run here
with /app mapped to this checkout and imports held to the serving packages: nginx on PORT in front of gunicorn on
APP_PORT (deploy/entrypoint.sh). With a model mounted on the export folder it becomes ready through the proxy and
passes the HEALTHCHECK; with the image's empty default folder it is alive but not ready, which is what makes
deploy/deploy.sh roll back. SIGTERM stops both processes within seconds."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.deploy.image_model import (
    REPO_ROOT,
    build_args,
    exec_form,
    image_env,
    local_environment,
    single,
    write_import_blocker,
)
from tests.servers import NGINX, NO_NGINX, free_port, start_server
from tests.tiny_served_model import tiny_model_for_session

pytestmark = [pytest.mark.slow, pytest.mark.skipif(NGINX is None, reason=NO_NGINX)]

START_TIMEOUT_S = 60
# Without keep-alive: gunicorn 26's gthread worker holds an idle keep-alive connection open through the whole
# graceful_timeout when told to stop, which would only slow the teardown down.
NO_KEEP_ALIVE = {"Connection": "close"}


def get(url: str) -> requests.Response:
    return requests.get(url, headers=NO_KEEP_ALIVE, timeout=5)


def container_environment(export_dir: Path, scratch: Path) -> dict[str, str]:
    """The Dockerfile's ENV as the container sees it, mapped onto this machine; the model folder plays the
    part of the volume mounted on /app/artifacts/export, and the .h5 is absent as in the image. PORT and
    APP_PORT are free ports (the container's are fixed), PROXY_RUN_DIR a folder of the test's (the container's
    /tmp is its own); nginx's folder joins PATH, as /usr/sbin is on the image's."""
    mapping = {"/app": REPO_ROOT, "/opt/venv": Path(sys.prefix)}
    base_path = os.pathsep.join([os.environ.get("PATH", os.defpath), str(Path(NGINX).parent)])
    environment = local_environment(image_env(), base_path, mapping)
    blocker = write_import_blocker(scratch / "blocker")
    environment.update({
        "HOME": str(scratch), "PORT": str(free_port()), "APP_PORT": str(free_port()),
        "PROXY_RUN_DIR": str(scratch / "nginx"), "DEEPFAKE_DETECTOR_EXPORT_DIR": str(export_dir),
        "DEEPFAKE_DETECTOR_MODEL": str(scratch / "absent" / "model.h5"),
        "PYTHONPATH": os.pathsep.join([str(blocker), environment["PYTHONPATH"]]),
        "DVC_NO_ANALYTICS": "1", "DO_NOT_TRACK": "1",
    })
    return environment


@contextmanager
def entry_point(export_dir: Path, scratch: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    """The CMD running with the image's environment; yields (the proxy's base URL, the environment, log file)."""
    environment = container_environment(export_dir, scratch)
    command = exec_form(single("CMD"))
    workdir = Path(single("WORKDIR").arguments.replace("/app", str(REPO_ROOT), 1))
    command[0] = shutil.which(command[0], path=environment["PATH"]) or str(workdir / command[0])
    server = start_server(command, scratch / "server.log", env=environment, cwd=workdir,
                          timeout_s=START_TIMEOUT_S)
    assert server.port == int(environment["APP_PORT"]), "gunicorn must listen on APP_PORT"
    server.port = int(environment["PORT"])  # clients reach nginx
    try:
        server.wait_for("/healthz", timeout_s=START_TIMEOUT_S, headers=NO_KEEP_ALIVE)
        yield server.base_url, environment, server.log_file
    finally:
        assert server.stop() == 0 and server.process.returncode == 0, server.log(3000)


def wait_for_ready(base_url: str) -> requests.Response:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        response = get(f"{base_url}/readyz")
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.3)


def test_entry_point_with_a_mounted_model_is_healthy_and_ready(tmp_path_factory, tmp_path):
    tiny = tiny_model_for_session(tmp_path_factory)
    with entry_point(tiny.export_dir, tmp_path) as (base_url, environment, log_file):
        assert get(f"{base_url}/healthz").status_code == 200
        ready = wait_for_ready(base_url)
        assert ready.status_code == 200, ready.text
        assert ready.json()["backend"] == "tflite"
        assert ready.headers["Server"].startswith("nginx")
        assert get(f"{base_url}/metrics").status_code == 403  # not served to the public through the proxy

        healthcheck = exec_form(single("HEALTHCHECK"))
        healthcheck[0] = shutil.which(healthcheck[0], path=environment["PATH"])
        result = subprocess.run(healthcheck, env=environment, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
    log = log_file.read_text()
    assert "Traceback" not in log and "not in requirements-serve.txt" not in log, log[-3000:]


def test_entry_point_without_a_model_is_alive_but_not_ready(tmp_path):
    placeholder = REPO_ROOT / build_args()["MODEL_DIR"]  # what /app/artifacts/export holds when nothing is baked
    with entry_point(placeholder, tmp_path) as (base_url, _, _):
        assert get(f"{base_url}/healthz").status_code == 200
        not_ready = get(f"{base_url}/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["error"]["code"]


def test_sigterm_stops_nginx_and_gunicorn_within_seconds(tmp_path_factory, tmp_path):
    tiny = tiny_model_for_session(tmp_path_factory)
    with entry_point(tiny.export_dir, tmp_path) as (base_url, environment, _):
        assert wait_for_ready(base_url).status_code == 200
        started = time.monotonic()
        # the context's exit sends SIGTERM and requires exit status 0
    assert time.monotonic() - started < 10
    for port in (environment["PORT"], environment["APP_PORT"]):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
