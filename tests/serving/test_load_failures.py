"""Whatever goes wrong while loading or warming up the model, the worker stays up: /healthz 200, /readyz 503 with
a reason that names no host path and no hash (the log has the whole error), and a later retry that works makes
it ready."""
import logging
import re
import sys
import time

import pytest

from deepfake_detector.contracts.errors import ModelError
from deepfake_detector.serving.service import DetectionService

SECRET_FOLDER = "/srv/secret-host-folder"
DIGEST = "ab" * 32
HOST_DETAIL = re.compile(r"[/\\]|[0-9a-fA-F]{12,}")

FAILURES = {
    "warm-up RuntimeError": (RuntimeError(f"warm-up failed for {SECRET_FOLDER}/model.tflite ({DIGEST})"),
                             "RuntimeError"),
    "OSError while hashing": (PermissionError(13, "Permission denied", f"{SECRET_FOLDER}/model.h5"),
                              "PermissionError (Permission denied)"),
    "keras backend in a TensorFlow-free image": (
        ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow"), "'tensorflow'"),
    "ModelError naming a path and a digest": (
        ModelError(f"{SECRET_FOLDER}/export/model.tflite: SHA-256 {DIGEST} differs from the model card's"),
        "model.tflite: SHA-256 <digest> differs"),
}


@pytest.fixture
def failing_once(monkeypatch, service):
    """DetectionService.from_config raising the given error on its first call and loading the session's service
    afterwards; the calls are counted."""
    calls = []

    def install(error: Exception) -> list:
        def load(cls, config, environ=None):
            calls.append(config)
            if len(calls) == 1:
                raise error
            return service
        monkeypatch.setattr(DetectionService, "from_config", classmethod(load))
        return calls
    return install


def wait_until_ready(client, timeout_s: float = 10):
    deadline = time.monotonic() + timeout_s
    while (response := client.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, f"never ready: {response.get_json()}"
        time.sleep(0.05)
    return response


@pytest.mark.parametrize("case", list(FAILURES))
def test_a_load_failure_means_alive_not_ready_with_a_public_reason_then_a_retry(make_app, failing_once, caplog,
                                                                               case):
    error, shown = FAILURES[case]
    calls = failing_once(error)
    with caplog.at_level(logging.WARNING, logger="deepfake_detector.serving.lifecycle"):
        client = make_app(load_model=True, retry_interval_s=0.0).test_client()
    assert str(error) in caplog.text, "the server log keeps the whole error"

    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503
    reason = response.get_json()["reason"]
    assert shown in reason
    assert not HOST_DETAIL.search(reason), reason

    assert wait_until_ready(client).get_json()["status"] == "ready"
    assert len(calls) == 2


def test_the_reason_for_a_missing_model_names_files_not_folders(make_app, tmp_path):
    client = make_app(load_model=True, backend="auto", model_file=tmp_path / "model.h5",
                      export_dir=tmp_path / "export").test_client()
    reason = client.get("/readyz").get_json()["reason"]
    assert "model.h5" in reason and str(tmp_path) not in reason
    assert not HOST_DETAIL.search(reason), reason


def test_a_tampered_export_is_not_ready_without_showing_its_hashes(make_app, project, tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    for name in ("model_card.json", "model.tflite"):
        (export / name).write_bytes((project / "export" / name).read_bytes())
    with open(export / "model.tflite", "ab") as handle:
        handle.write(b"tampered")
    client = make_app(load_model=True, backend="tflite", model_file=tmp_path / "absent.h5",
                      export_dir=export).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    reason = response.get_json()["reason"]
    assert "model.tflite" in reason and "<digest>" in reason
    assert not HOST_DETAIL.search(reason), reason


def test_the_keras_backend_without_tensorflow_says_to_serve_the_tflite_export(make_app, project, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # `import tensorflow` now fails, as in the serving image
    client = make_app(load_model=True, backend="keras").test_client()
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503
    reason = response.get_json()["reason"]
    assert "keras backend cannot run here: tensorflow is not installed" in reason and "backend tflite" in reason
