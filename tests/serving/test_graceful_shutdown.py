"""SIGTERM on the real server (gunicorn.conf.py, 1 worker x 1 thread, loopback): readiness turns 503 at once,
while the upload already in flight still gets its answer and the server then exits cleanly."""
import json
import os
import signal
import socket
import sys
import time

import pytest

from deepfake_detector.serving.settings import repository_root
from tests.servers import start_server
from tests.serving import sample_images
from tests.serving.test_gunicorn import supports_no_control_socket

pytestmark = pytest.mark.slow

BOUNDARY = "shutdown-test-boundary"
STOPPING_LOGGED = "SIGTERM: not ready from now on"


@pytest.fixture
def server(project, tmp_path):
    environment = {**os.environ, "DEEPFAKE_DETECTOR_MODEL": str(project / "model.h5"),
                   "DEEPFAKE_DETECTOR_EXPORT_DIR": str(project / "export"), "DEEPFAKE_DETECTOR_BACKEND": "tflite"}
    command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--bind", "127.0.0.1:0",
               "--workers", "1", "--threads", "1"]
    if supports_no_control_socket():
        command.append("--no-control-socket")
    running = start_server(command, tmp_path / "gunicorn.log", env=environment, cwd=repository_root())
    try:
        running.wait_for("/readyz", timeout_s=120)
        yield running
    finally:
        running.stop(signal.SIGKILL)


def upload_request(image: bytes) -> bytes:
    body = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n").encode() + image + f"\r\n--{BOUNDARY}--\r\n".encode()
    head = (f"POST /api/v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def answer(connection: socket.socket) -> tuple[int, dict]:
    """The status and JSON body of the one response on a Connection: close socket."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_sigterm_turns_readiness_off_while_the_request_in_flight_completes(server):
    request = upload_request(sample_images.jpeg(300, 300))
    half = len(request) // 2
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as in_flight, \
            socket.create_connection(("127.0.0.1", server.port), timeout=30) as readiness:
        in_flight.sendall(request[:half])  # the worker's only thread now waits for the rest of this body
        time.sleep(0.5)
        readiness.sendall(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        time.sleep(0.5)  # accepted and queued behind the upload

        server.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while STOPPING_LOGGED not in server.log():
            assert time.monotonic() < deadline, f"the worker never flagged the stop:\n{server.log(4000)}"
            time.sleep(0.1)

        in_flight.sendall(request[half:])
        status, body = answer(in_flight)
        assert status == 200, body
        assert 0.0 <= body["results"][0]["fake_probability"] <= 1.0

        status, body = answer(readiness)
        assert status == 503, body
        assert body["status"] == "not_ready" and body["error"]["code"] == "shutting_down"

    assert server.process.wait(timeout=30) == 0
