"""`dvc repro` killed with SIGKILL during training resumes from the trainer's backup when rerun."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.pipeline.tiny_repo import make_tiny_repo, project_env, run

pytestmark = pytest.mark.slow

EPOCHS = 4


def wait_for_epochs(history: Path, count: int, process: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "training ended before it could be interrupted"
        rows = history.read_text().splitlines()[1:] if history.exists() else []  # below a header line
        if len(rows) >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"no {count} epochs in {history} after {timeout} s")


def test_killed_repro_resumes_training_from_its_backup(tmp_path: Path) -> None:
    root = make_tiny_repo(tmp_path, {"train.fine_tune_epochs": EPOCHS, "train.early_stopping_patience": EPOCHS})
    history = root / "artifacts/training/history.csv"
    # Up to evaluate: the stages after it do not touch training, and test_dvc_pipeline.py runs them.
    first = subprocess.Popen(["dvc", "repro", "evaluate"], cwd=root, env=project_env(root), start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_epochs(history, 2, first)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    epochs_before = len(pd.read_csv(history))
    run_id_before = json.loads((root / "artifacts/training/mlflow_run.json").read_text())["run_id"]

    second = run(["dvc", "repro", "evaluate"], root)

    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "resum" in second.stderr.lower()
    assert "Running stage 'ingest'" not in second.stdout  # finished stages are not redone
    epochs = pd.read_csv(history)["epoch"].tolist()
    assert epochs == list(range(EPOCHS)), f"history should continue without repeats, got {epochs}"
    assert epochs_before >= 2
    assert json.loads((root / "artifacts/training/mlflow_run.json").read_text())["run_id"] == run_id_before
    assert (root / "scores.json").exists()
