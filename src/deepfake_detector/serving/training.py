"""Training over HTTP, off unless serve.training_enabled: POST /api/v1/train starts the pipeline
(`dvc repro`, or `python main.py` without DVC) in a background process, GET /api/v1/train/<id>
reports on it. Both need `Authorization: Bearer $DEEPFAKE_DETECTOR_TRAIN_TOKEN`.

One run at a time across every worker process: the run holds an exclusive lock on a file in the
state folder (inherited by the child, so it lasts exactly as long as the pipeline does). Each
run's status and output are files in that folder, so any worker can report on any run.
"""
from __future__ import annotations

import fcntl
import hmac
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, jsonify, request

from deepfake_detector.serving.errors import ApiError
from deepfake_detector.utils.files import write_json_atomic

logger = logging.getLogger(__name__)

LOCK_FILE = "train.lock"
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


class TrainingBusyError(Exception):
    """Another training run holds the lock."""


class TrainingRunner:
    """Starts the pipeline in a child process and records its progress under state_dir."""

    def __init__(self, project_root: Path, state_dir: Path, command: Sequence[str] | None = None):
        self.project_root = Path(project_root)
        self.state_dir = Path(state_dir)
        self.command = list(command) if command else default_command(self.project_root)

    def start(self) -> dict[str, Any]:
        """The new run's status; raises TrainingBusyError when a run is in progress."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            raise TrainingBusyError("a training run is already in progress") from None
        job_id = uuid.uuid4().hex
        status = {"id": job_id, "status": "running", "command": self.command, "returncode": None,
                  "started": _now(), "finished": None, "log": f"{job_id}.log"}
        try:
            with open(self.state_dir / f"{job_id}.log", "wb") as log:
                process = subprocess.Popen(self.command, cwd=self.project_root, stdout=log,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, pass_fds=(lock,))
        except OSError as error:
            os.close(lock)
            raise ApiError(500, "training_failed_to_start", f"cannot run {' '.join(self.command)}: {error}") from None
        self._write(status)
        logger.info("training run %s started: %s (pid %d)", job_id, " ".join(self.command), process.pid)
        threading.Thread(target=self._wait, args=(process, status, lock), name=f"train-{job_id[:8]}",
                         daemon=True).start()
        return status

    def status(self, job_id: str) -> dict[str, Any] | None:
        if not _JOB_ID.match(job_id):
            return None
        try:
            return json.loads((self.state_dir / f"{job_id}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _wait(self, process: subprocess.Popen, status: dict[str, Any], lock: int) -> None:
        try:
            returncode = process.wait()
        finally:
            os.close(lock)  # before the final status, so whoever reads "finished" may start the next run
        self._write({**status, "status": "succeeded" if returncode == 0 else "failed",
                     "returncode": returncode, "finished": _now()})
        logger.info("training run %s finished with exit status %d", status["id"], returncode)

    def _write(self, status: dict[str, Any]) -> None:
        write_json_atomic(self.state_dir / f"{status['id']}.json", status)


def default_command(project_root: Path) -> list[str]:
    """`dvc repro` with the DVC installed beside this Python (or on PATH), else `python main.py`."""
    beside = Path(sys.executable).with_name("dvc")
    if beside.is_file():
        return [str(beside), "repro"]
    found = shutil.which("dvc")
    return [found, "repro"] if found else [sys.executable, str(project_root / "main.py")]


def create_training_blueprint(runner: TrainingRunner, token: str | None) -> Blueprint:
    """The two routes; every call answers 503 when no token is configured, 401 for a wrong one."""
    blueprint = Blueprint("training", __name__, url_prefix="/api/v1/train")

    def authorize() -> None:
        if not token:
            raise ApiError(503, "training_unavailable", "training is enabled but DEEPFAKE_DETECTOR_TRAIN_TOKEN "
                                                        "is not set; set it and restart the server")
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <DEEPFAKE_DETECTOR_TRAIN_TOKEN>'")

    @blueprint.post("")
    def start():
        authorize()
        try:
            status = runner.start()
        except TrainingBusyError as error:
            raise ApiError(409, "training_in_progress", str(error)) from None
        return jsonify(status), 202, {"Location": f"/api/v1/train/{status['id']}"}

    @blueprint.get("/<job_id>")
    def show(job_id: str):
        authorize()
        status = runner.status(job_id)
        if status is None:
            raise ApiError(404, "not_found", f"no training run {job_id!r}")
        return jsonify(status)

    return blueprint


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()
