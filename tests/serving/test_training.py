"""Training over HTTP: absent unless enabled, refused without a configured token, bearer-token guarded,
one run at a time, status readable by id."""
import sys
import time
from pathlib import Path

import pytest

from deepfake_detector.serving.training import TrainingBusyError, TrainingRunner

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_training_routes_are_404_when_disabled(client):
    assert client.post("/api/v1/train", headers=AUTH).status_code == 404
    assert client.get("/api/v1/train/" + "0" * 32, headers=AUTH).status_code == 404


def test_enabled_without_a_token_refuses_with_503(make_app):
    client = make_app(training_enabled=True).test_client()
    response = client.post("/api/v1/train", headers=AUTH)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "training_unavailable"


@pytest.fixture
def training_client(make_app):
    app = make_app(environ={"DEEPFAKE_DETECTOR_TRAIN_TOKEN": TOKEN}, training_enabled=True)
    return app.test_client()


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}])
def test_missing_or_wrong_token_is_401(training_client, headers):
    response = training_client.post("/api/v1/train", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert training_client.get("/api/v1/train/" + "0" * 32, headers=headers).status_code == 401


def test_there_is_still_no_get_train(training_client):
    assert training_client.get("/train", headers=AUTH).status_code == 404


# A stand-in for the pipeline that runs until the test creates the gate file, so "still running" holds for
# exactly as long as the test needs (a minute at most, so a broken test fails instead of hanging).
GATED_RUN = """
import pathlib, sys, time
gate, deadline = pathlib.Path(sys.argv[1]), time.monotonic() + 60
while not gate.exists():
    if time.monotonic() > deadline:
        sys.exit("the test never opened the gate")
    time.sleep(0.01)
"""


def gated_command(gate: Path) -> list[str]:
    return [sys.executable, "-c", GATED_RUN, str(gate)]


def wait_for(runner, job_id, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = runner.status(job_id)
        if status["status"] != "running":
            return status
        time.sleep(0.05)
    raise AssertionError(f"run {job_id} still running")


def test_one_run_at_a_time_and_its_status_is_reported(tmp_path):
    gate = tmp_path / "gate"
    runner = TrainingRunner(tmp_path, tmp_path / "state", gated_command(gate))
    first = runner.start()
    assert first["status"] == "running"
    with pytest.raises(TrainingBusyError):
        runner.start()
    assert runner.status(first["id"])["status"] == "running"
    gate.touch()
    assert wait_for(runner, first["id"])["status"] == "succeeded"
    second = runner.start()  # the lock is free again
    assert wait_for(runner, second["id"])["returncode"] == 0


def test_a_failing_run_is_reported_failed_with_its_output_kept(tmp_path):
    runner = TrainingRunner(tmp_path, tmp_path / "state", [sys.executable, "-c", "print('boom'); raise SystemExit(3)"])
    status = wait_for(runner, runner.start()["id"])
    assert (status["status"], status["returncode"]) == ("failed", 3)
    assert "boom" in (tmp_path / "state" / status["log"]).read_text()


def test_post_train_starts_one_run_in_the_background_and_get_reports_it(make_app, tmp_path):
    # A gated command stands in for `dvc repro`: the routes, not the pipeline, are under test here.
    gate = tmp_path / "gate"
    app = make_app(environ={"DEEPFAKE_DETECTOR_TRAIN_TOKEN": TOKEN}, training_enabled=True,
                   training_command=gated_command(gate))
    client = app.test_client()
    started = client.post("/api/v1/train", headers=AUTH)
    assert started.status_code == 202
    job = started.get_json()
    assert started.headers["Location"] == f"/api/v1/train/{job['id']}"
    busy = client.post("/api/v1/train", headers=AUTH)
    assert busy.status_code == 409 and busy.get_json()["error"]["code"] == "training_in_progress"
    assert client.get(f"/api/v1/train/{job['id']}", headers=AUTH).get_json()["status"] == "running"
    gate.touch()
    deadline = time.monotonic() + 20
    while (status := client.get(f"/api/v1/train/{job['id']}", headers=AUTH).get_json())["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert status["status"] == "succeeded"
    assert client.get("/api/v1/train/not-an-id", headers=AUTH).status_code == 404
