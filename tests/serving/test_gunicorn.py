"""The production server for real: gunicorn with gunicorn.conf.py's 2 workers x 8 threads on 127.0.0.1, hammered
by 7 client threads with a mix of good and bad images; every answer must equal that image's answer alone. Each worker
runs 3 predictions at once and keeps 4 more waiting for a slot (one thread stays for health checks), so however the
7 connections fall on the workers, none is refused."""
import json
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from deepfake_detector.serving.settings import repository_root
from tests.servers import start_server
from tests.serving import sample_images

pytestmark = pytest.mark.slow

GOOD = {
    "a.jpg": sample_images.jpeg(300, 300, seed=1),
    "b.jpg": sample_images.jpeg(120, 200, seed=2),
    "c.png": sample_images.png(64, 64, seed=3),
    "d.gif": sample_images.animated_gif(),
    "e.jpg": sample_images.cmyk_jpeg(),
    "f.png": sample_images.rgba_png(),
}
# A worker's 3 slots + 4 queue places (8 threads, one kept for health checks): even all on one worker, none is
# refused.
CLIENTS = 7
BAD = {"cut.jpg": sample_images.truncated_jpeg(), "bomb.png": sample_images.decompression_bomb_png()}


def supports_no_control_socket() -> bool:
    help_text = subprocess.run([sys.executable, "-m", "gunicorn", "--help"], capture_output=True, text=True).stdout
    return "--no-control-socket" in help_text


@pytest.fixture(scope="module")
def server(project, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    environment = {**os.environ, "DEEPFAKE_DETECTOR_MODEL": str(project / "model.h5"),
                   "DEEPFAKE_DETECTOR_EXPORT_DIR": str(project / "export"), "DEEPFAKE_DETECTOR_BACKEND": "tflite"}
    command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--bind", "127.0.0.1:0",
               "--workers", "2", "--threads", "8"]
    if supports_no_control_socket():
        command.append("--no-control-socket")
    running = start_server(command, log_path, env=environment, cwd=repository_root())
    try:
        running.wait_for("/readyz", timeout_s=120)
        yield running.base_url, log_path, running.process
    finally:
        running.stop()


def predict(session: requests.Session, base_url: str, name: str, data: bytes) -> tuple[int, dict]:
    response = session.post(f"{base_url}/api/v1/predict", files={"file": (name, data)}, timeout=60)
    return response.status_code, response.json()


def test_concurrent_answers_equal_single_answers(server):
    base_url, log_path, process = server
    with requests.Session() as session:
        alone = {}
        for name, data in GOOD.items():
            status, body = predict(session, base_url, name, data)
            assert status == 200, body
            alone[name] = body["results"][0]["fake_probability"]
    assert len(set(alone.values())) > 1, "the tiny model should tell these images apart"

    rng = random.Random(0)
    names = [rng.choice(list(GOOD)) for _ in range(190)] + list(BAD) * 5
    rng.shuffle(names)

    def call(name: str) -> tuple[str, int, dict]:
        with requests.Session() as session:
            return (name, *predict(session, base_url, name, {**GOOD, **BAD}[name]))

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        answers = list(pool.map(call, names))

    assert len(answers) == 200
    for name, status, body in answers:
        if name in BAD:
            assert 400 <= status < 500 and body["error"]["code"] in ("invalid_image", "image_too_large")
        else:
            assert status == 200, body
            assert body["results"][0]["fake_probability"] == pytest.approx(alone[name], abs=1e-6)
    assert process.poll() is None
    assert "WORKER TIMEOUT" not in log_path.read_text() and "Worker exited" not in log_path.read_text()


def test_request_id_is_echoed_and_logged_as_json(server):
    base_url, log_path, _ = server
    response = requests.get(f"{base_url}/healthz?probe=1", timeout=10,
                            headers={"X-Request-ID": "trace-42", "User-Agent": "probe/1.0"})
    assert response.headers["X-Request-ID"] == "trace-42"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        entries = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.startswith("{")]
        access = [e for e in entries if e.get("request_id") == "trace-42" and e.get("event") == "access"]
        if access:
            entry = access[0]
            assert entry["status"] == 200 and entry["method"] == "GET" and entry["path"] == "/healthz"
            assert entry["query"] == "probe=1" and entry["user_agent"] == "probe/1.0"
            assert entry["remote"] == "127.0.0.1" and entry["bytes"] == len(response.content)
            assert 0 < entry["duration_ms"] < 10_000
            return
        time.sleep(0.2)
    raise AssertionError("no JSON access log entry carries the request id")
