"""The image's entry point without Docker: the Dockerfile's CMD, WORKDIR and ENV, read from the file and run here
with /app mapped to this checkout and imports held to the serving packages. With a model mounted on the export
folder it becomes ready and passes the HEALTHCHECK; with the image's empty default folder it is alive but not
ready, which is what makes deploy/deploy.sh roll back."""
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
from tests.servers import start_server
from tests.tiny_served_model import tiny_model_for_session

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 60
# Without keep-alive: gunicorn 26's gthread worker holds an idle keep-alive connection open through the whole
# graceful_timeout when told to stop, which would only slow the teardown down.
NO_KEEP_ALIVE = {"Connection": "close"}


def get(url: str) -> requests.Response:
    return requests.get(url, headers=NO_KEEP_ALIVE, timeout=5)


def container_environment(export_dir: Path, scratch: Path) -> dict[str, str]:
    """The Dockerfile's ENV as the container sees it, mapped onto this machine; the model folder plays the
    part of the volume mounted on /app/artifacts/export, and the .h5 is absent as in the image. PORT is 0:
    the server takes a port no other process holds and says which (the container's is fixed)."""
    mapping = {"/app": REPO_ROOT, "/opt/venv": Path(sys.prefix)}
    environment = local_environment(image_env(), os.environ.get("PATH", os.defpath), mapping)
    blocker = write_import_blocker(scratch / "blocker")
    environment.update({
        "HOME": str(scratch), "PORT": "0", "DEEPFAKE_DETECTOR_EXPORT_DIR": str(export_dir),
        "DEEPFAKE_DETECTOR_MODEL": str(scratch / "absent" / "model.h5"),
        "PYTHONPATH": os.pathsep.join([str(blocker), environment["PYTHONPATH"]]),
        "DVC_NO_ANALYTICS": "1", "DO_NOT_TRACK": "1",
    })
    return environment


@contextmanager
def entry_point(export_dir: Path, scratch: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    """The CMD running with the image's environment; yields (base URL, environment with PORT set to the port
    it listens on, log file)."""
    environment = container_environment(export_dir, scratch)
    command = exec_form(single("CMD"))
    command[0] = shutil.which(command[0], path=environment["PATH"])
    workdir = Path(single("WORKDIR").arguments.replace("/app", str(REPO_ROOT), 1))
    server = start_server(command, scratch / "server.log", env=environment, cwd=workdir,
                          timeout_s=START_TIMEOUT_S)
    try:
        server.wait_for("/healthz", timeout_s=START_TIMEOUT_S, headers=NO_KEEP_ALIVE)
        yield server.base_url, {**environment, "PORT": str(server.port)}, server.log_file
    finally:
        server.stop()


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
