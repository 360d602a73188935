"""The pipeline against a real MLflow tracking server (SQLite backend, proxied artifact store): train and
evaluate log over HTTP, the run, its artifacts and the registered model read back from the server, and
nothing lands in a local store."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from deepfake_detector.config import ConfigurationManager
from tests.pipeline.tiny_repo import TINY_PARAMS, make_tiny_repo, project_env

pytestmark = pytest.mark.slow

MLFLOW = Path(sys.executable).parent / "mlflow"
START_TIMEOUT_S = 240  # imports and table creation take 20 s idle, over a minute on a busy 2-core machine
LOCAL_STORES = ("mlruns", "mlflow.db", "mlartifacts")
# What is tested is the logging, not the learning: one epoch of the head on a frozen backbone traces a
# far smaller training graph than fine-tuning all of MobileNetV2 (about 30 s instead of 80 s here).
QUICK_TRAINING = {"train.head_epochs": 1, "train.fine_tune_layers": 0, "train.fine_tune_epochs": 0,
                  "train.augment.enabled": False}


PORT_TAKEN = "address already in use"  # what uvicorn logs when another process took the port first
START_ATTEMPTS = 3


class PortTakenError(RuntimeError):
    """The server could not bind the port it was given: something took it after it was picked."""


@dataclass
class TrackingServer:
    """`mlflow server` on a port picked free; started again on another one if that port was taken meanwhile
    (the server cannot bind port 0 and report it, so the pick-then-bind race is retried, not ignored)."""

    folder: Path
    process: subprocess.Popen | None = None
    url: str = ""

    @property
    def artifacts(self) -> Path:
        return self.folder / "artifacts"

    @property
    def log_file(self) -> Path:
        return self.folder / "server.log"

    def start(self) -> None:
        port = free_port()
        command = [str(MLFLOW), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                   "--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}",
                   "--artifacts-destination", str(self.artifacts)]
        # Job execution starts a job runner and several huey consumer processes (for GenAI jobs) that this
        # project never uses; on two cores they double the start-up time.
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with self.log_file.open("w") as log:
            self.process = subprocess.Popen(command, cwd=self.folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.url = f"http://127.0.0.1:{port}"

    def log_tail(self, characters: int = 4000) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return f"--- mlflow server log ({self.log_file}) ---\n{text[-characters:]}"

    def wait_until_healthy(self, timeout: float = START_TIMEOUT_S) -> None:
        """Wait for /health; start again on a new port (up to START_ATTEMPTS in all) if the port was taken."""
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._wait_for_health(timeout)
                return
            except PortTakenError:
                if attempt == START_ATTEMPTS:
                    raise
                self.stop()
                self.start()

    def _wait_for_health(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if PORT_TAKEN in self.log_tail().lower():
                    raise PortTakenError(self.log_tail())
                raise RuntimeError(f"mlflow server exited with {self.process.returncode}\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"mlflow server not healthy after {timeout} s\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM the whole group (the CLI, its uvicorn worker), SIGKILL whatever outlives a grace period."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def show_on_terminal(config: pytest.Config, text: str) -> None:
    """Write past pytest's output capture: a module fixture's teardown output is otherwise dropped."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if capture is None or reporter is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(text)


@pytest.fixture(scope="module")
def server(tmp_path_factory, request) -> Iterator[TrackingServer]:
    tracking_server = TrackingServer(tmp_path_factory.mktemp("mlflow-server"))
    tracking_server.start()  # in the background while the tiny repository is made; `logged` waits for it
    failures_before = request.session.testsfailed
    try:
        yield tracking_server
    finally:
        tracking_server.stop()
        if request.session.testsfailed > failures_before:
            show_on_terminal(request.config, tracking_server.log_tail())


@dataclass(frozen=True)
class LoggedPipeline:
    root: Path
    server: TrackingServer
    run_id: str
    stderr: str


def repro(root: Path, *targets: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["dvc", "repro", *targets], cwd=root, env={**project_env(root), **env},
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def logged(server: TrackingServer, tmp_path_factory) -> LoggedPipeline:
    """The tiny pipeline up to evaluate; train and evaluate log to the server."""
    root = make_tiny_repo(tmp_path_factory.mktemp("repo"), QUICK_TRAINING)
    # The stages before training do not need the server: they run while it starts, with tracking off.
    early = repro(root, "validate", "prepare_model", DEEPFAKE_DETECTOR_TRACKING="0")
    assert early.returncode == 0, early.stdout[-3000:] + early.stderr[-3000:]
    server.wait_until_healthy()

    result = repro(root, "evaluate", MLFLOW_TRACKING_URI=server.url)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-4000:] + server.log_tail()
    assert "Running stage 'train'" in result.stdout and "Running stage 'evaluate'" in result.stdout
    run_file = json.loads((root / "artifacts/training/mlflow_run.json").read_text())
    assert run_file["tracking_uri"] == server.url
    return LoggedPipeline(root=root, server=server, run_id=run_file["run_id"], stderr=result.stderr)


@pytest.fixture(scope="module")
def client(logged: LoggedPipeline):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=logged.server.url)


def test_no_tracking_call_failed(logged: LoggedPipeline) -> None:
    # Tracking failures only warn (the stage still succeeds), so the log is where a broken server shows.
    assert "MLflow tracking at" not in logged.stderr, logged.stderr[-4000:] + logged.server.log_tail()


def test_run_holds_test_metrics_in_the_configured_experiment(logged: LoggedPipeline, client) -> None:
    tracking = ConfigurationManager(root=logged.root).get_tracking_config()
    run = client.get_run(logged.run_id)
    scores = json.loads((logged.root / "scores.json").read_text())

    assert client.get_experiment(run.info.experiment_id).name == tracking.experiment_name
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test_roc_auc"] == pytest.approx(scores["roc_auc"])
    assert run.data.metrics["test_eer"] == pytest.approx(scores["eer"])
    assert run.data.params["train.batch_size"] == str(TINY_PARAMS["train.batch_size"])


def test_run_artifacts_round_trip_through_the_server(logged: LoggedPipeline, client, tmp_path: Path) -> None:
    names = {artifact.path for artifact in client.list_artifacts(logged.run_id)}
    assert {"scores.json", "plots", "evaluation", "training"} <= names

    downloaded = client.download_artifacts(logged.run_id, "scores.json", str(tmp_path))

    assert Path(downloaded).read_bytes() == (logged.root / "scores.json").read_bytes()
    # Proxied: the bytes sit in the server's --artifacts-destination, not in a client-side folder.
    assert list(logged.server.artifacts.rglob("scores.json"))


def test_model_is_logged_from_the_run_and_registered(logged: LoggedPipeline, client) -> None:
    tracking = ConfigurationManager(root=logged.root).get_tracking_config()
    run = client.get_run(logged.run_id)
    models = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    from_run = [m for m in models if m.source_run_id == logged.run_id]
    assert len(from_run) == 1, models
    model = from_run[0]
    model_files = {artifact.path for artifact in client.list_logged_model_artifacts(model.model_id)}
    versions = client.search_model_versions(f"name='{tracking.registered_model_name}'")

    assert {"MLmodel", "data"} <= model_files
    assert [(v.run_id, v.status) for v in versions] == [(logged.run_id, "READY")]
    assert versions[0].source == f"models:/{model.model_id}"


def test_nothing_is_written_to_a_local_store(logged: LoggedPipeline) -> None:
    assert [name for name in LOCAL_STORES if (logged.root / name).exists()] == []
