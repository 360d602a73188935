"""Two training processes on this machine form a MultiWorkerMirroredStrategy cluster over localhost
and train the tiny detector through the project's Trainer: one epoch, then a cluster SIGKILLed
after its first epoch and restarted."""
from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from deepfake_detector.components.model.distribution import WORKER_DIR_VARIABLE
from deepfake_detector.components.model.factory import ModelPreparer
from tests.pipeline.trainer_helpers import model_config, save_training_config, training_config, write_dataset

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 240
COUNTS = {"train": (8, 8), "val": (4, 4), "test": (1, 1)}
DECLARED_OUTPUTS = {"model.h5", "history.csv", "best.weights.h5"}  # after success; backup/ is removed
PORT_CONFLICT = "Could not start gRPC server"   # TensorFlow's message when a worker's port is taken
PORT_TAKEN = "port taken"
START_ATTEMPTS = 3
WORKER_SCRIPT = """
import logging, os, sys, time
from pathlib import Path
import keras
from deepfake_detector.components.model.trainer import Trainer
from tests.pipeline.trainer_helpers import load_training_config

class PauseAfterEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        time.sleep(float(os.environ["PAUSE_AFTER_EPOCH_S"]))

class SaveLastWeights(keras.callbacks.Callback):
    def on_train_end(self, logs=None):
        self.model.save_weights(os.environ["LAST_WEIGHTS_FILE"])

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
Trainer(load_training_config(Path(sys.argv[1]))).run(callbacks=[PauseAfterEpoch(), SaveLastWeights()])
"""


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for handle in sockets:
            handle.bind(("127.0.0.1", 0))
        return [handle.getsockname()[1] for handle in sockets]
    finally:
        for handle in sockets:
            handle.close()


def worker_environment(addresses: list[str], index: int, worker_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "TF_CONFIG": json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}),
        WORKER_DIR_VARIABLE: str(worker_dir),
        # Two processes share two cores: one thread pool each, and no GPU even where there is one.
        "TF_NUM_INTEROP_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO),
    })
    return env


def log_tails(logs: list[Path]) -> str:
    return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in logs if log.exists())


def port_taken(process: subprocess.Popen, log: Path) -> bool:
    """The worker exited because its gRPC server could not bind its port."""
    return process.poll() not in (None, 0) and PORT_CONFLICT in log.read_text(errors="replace")


def start_cluster_once(config_file: Path, worker_dirs: list[Path], logs: list[Path], pause_after_epoch_s: float,
                       kill_when: Callable[[], bool] | None) -> list[int] | None | str:
    """One attempt of run_cluster on freshly chosen ports; PORT_TAKEN when a worker could not bind its port."""
    addresses = [f"127.0.0.1:{port}" for port in free_ports(len(worker_dirs))]
    processes = []
    try:
        for index, (folder, log) in enumerate(zip(worker_dirs, logs, strict=True)):
            env = {**worker_environment(addresses, index, folder), "PAUSE_AFTER_EPOCH_S": str(pause_after_epoch_s),
                   "LAST_WEIGHTS_FILE": str(last_weights(log))}
            with open(log, "wb") as output:
                processes.append(subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT, str(config_file)], cwd=REPO,
                                                  env=env, stdout=output, stderr=subprocess.STDOUT,
                                                  start_new_session=True))
        deadline = time.monotonic() + TIMEOUT_S
        while any(process.poll() is None for process in processes):
            if any(port_taken(process, log) for process, log in zip(processes, logs, strict=True)):
                return PORT_TAKEN
            if kill_when is not None and kill_when():
                return None
            if time.monotonic() > deadline:
                pytest.fail(f"the cluster did not finish within {TIMEOUT_S} s\n{log_tails(logs)}")
            time.sleep(0.2)
        if any(port_taken(process, log) for process, log in zip(processes, logs, strict=True)):
            return PORT_TAKEN
        return [process.returncode for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run_cluster(config_file: Path, worker_dirs: list[Path], logs: list[Path], *, pause_after_epoch_s: float = 0.0,
                kill_when: Callable[[], bool] | None = None) -> list[int] | None:
    """Start one training process per worker and wait for all, within one deadline; every process
    group is killed on every path. Returns the exit codes, or None when `kill_when` came true first
    and the workers were SIGKILLed. Each worker also leaves the weights it ended training with
    beside its log (last_weights).

    TF_CONFIG names every worker's port before any worker starts, so a port chosen free can be taken
    by another process before its worker binds it: that worker exits at once, and the cluster is
    started again on new ports (the workers bind before any training, so nothing is lost).
    """
    for _ in range(START_ATTEMPTS):
        outcome = start_cluster_once(config_file, worker_dirs, logs, pause_after_epoch_s, kill_when)
        if outcome != PORT_TAKEN:
            return outcome
    pytest.fail(f"no free ports for the cluster in {START_ATTEMPTS} attempts\n{log_tails(logs)}")


def last_weights(log: Path) -> Path:
    return log.with_suffix(".weights.h5")


def read_weights(path: Path) -> dict[str, np.ndarray]:
    """Every array in a Keras .h5 model file, by its path in the file."""
    arrays = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, item: arrays.__setitem__(name, item[()])
                          if isinstance(item, h5py.Dataset) else None)
    return arrays


def read_history(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def make_cluster_config(root: Path, **overrides):
    """Tiny data and base model; the workers train the network's top layers, BatchNormalization
    included (per-replica statistics would differ between workers).

    The from-scratch backbone, frozen below those layers, passes almost no signal: validation AUC
    stays 0.5 and the saved model is the first epoch's, which is why the resumed run is checked
    on the weights each worker ended with.
    """
    dataset_dir, manifest = write_dataset(root, COUNTS)
    base_model = ModelPreparer(model_config(root)).run().model_file
    config = training_config(root, base_model, dataset_dir, manifest, strategy="multi_worker", batch_size=4,
                             fine_tune_layers=10, **overrides)
    config_file = root / "config.json"
    save_training_config(config, config_file)
    return config, config_file, [root / "worker0_scratch", root / "worker1_scratch"]


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory):
    """Two workers train one epoch; worker 0 is the chief."""
    root = tmp_path_factory.mktemp("multi_worker")
    config, config_file, worker_dirs = make_cluster_config(root, fine_tune_epochs=1)
    logs = [root / "worker0.log", root / "worker1.log"]
    codes = run_cluster(config_file, worker_dirs, logs)
    return config, worker_dirs, logs, codes


@pytest.fixture(scope="module")
def killed_cluster_run(tmp_path_factory):
    """Two epochs; both workers SIGKILLed once both backed up epoch 0, then the cluster restarted."""
    root = tmp_path_factory.mktemp("multi_worker_killed")
    config, config_file, worker_dirs = make_cluster_config(root, fine_tune_epochs=2)
    backups = [config.backup_dir / "fine_tune" / "training_metadata.json",
               worker_dirs[1] / config.backup_dir.name / "fine_tune" / "training_metadata.json"]
    first_logs = [root / "worker0.log", root / "worker1.log"]
    codes = run_cluster(config_file, worker_dirs, first_logs, pause_after_epoch_s=5.0,
                        kill_when=lambda: all(path.is_file() for path in backups))
    assert codes is None, f"the workers ended before the kill: {codes}\n{log_tails(first_logs)}"
    history_at_kill = read_history(config.history_file)
    logs = [root / "worker0.resumed.log", root / "worker1.resumed.log"]
    codes = run_cluster(config_file, worker_dirs, logs)
    return config, worker_dirs, logs, codes, history_at_kill


def test_both_workers_exit_cleanly(cluster_run):
    _, _, logs, codes = cluster_run
    assert codes == [0, 0], log_tails(logs)


def test_chief_saved_the_weights_the_other_worker_ended_with(cluster_run):
    config, worker_dirs, _, codes = cluster_run
    assert codes == [0, 0]
    chief = read_weights(config.model_file)
    worker = read_weights(worker_dirs[1] / config.model_file.name)
    assert chief.keys() == worker.keys() and len(chief) > 100
    different = [name for name in chief if not np.array_equal(chief[name], worker[name])]
    assert different == []


def test_only_the_chief_writes_the_declared_outputs(cluster_run):
    config, worker_dirs, _, codes = cluster_run
    assert codes == [0, 0]
    assert {path.name for path in config.root_dir.iterdir()} == DECLARED_OUTPUTS
    assert [row["epoch"] for row in read_history(config.history_file)] == ["0"]  # one writer, one row
    assert not worker_dirs[0].exists()  # the chief ignores the worker folder variable
    assert {path.name for path in worker_dirs[1].iterdir()} == DECLARED_OUTPUTS


def test_killed_cluster_resumes_from_each_workers_backup(killed_cluster_run):
    config, worker_dirs, logs, codes, history_at_kill = killed_cluster_run
    assert codes == [0, 0], log_tails(logs)
    assert [row["epoch"] for row in history_at_kill] == ["0"]
    for log in logs:
        assert "resuming from its backup at epoch 1" in log.read_text(), log_tails([log])
    assert [row["epoch"] for row in read_history(config.history_file)] == ["0", "1"]
    chief, worker = read_weights(last_weights(logs[0])), read_weights(last_weights(logs[1]))
    assert chief.keys() == worker.keys() and len(chief) > 100
    assert [name for name in chief if not np.array_equal(chief[name], worker[name])] == []
