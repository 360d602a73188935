"""Trainer on a tiny learnable set: learning, class weights, best-epoch model, phases, resumption
after SIGKILL."""
from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import pytest

from deepfake_detector.components.data.datasets import build_dataset, read_manifest, split_rows
from deepfake_detector.components.model.factory import ModelPreparer
from deepfake_detector.components.model.trainer import Trainer
from tests.pipeline.trainer_helpers import (
    IMAGE_SIZE,
    model_config,
    save_training_config,
    training_config,
    write_dataset,
)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
# Imbalanced on purpose: 32 fake and 16 real training images.
COUNTS = {"train": (32, 16), "val": (8, 8), "test": (2, 2)}
# Each fit traces the train step anew (~30 s on a busy 2-core box for a fully trainable backbone),
# so only two scenarios run, each shared by the tests that check it.


class EpochRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs: list[int] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


class InvertOutputAtEpoch(keras.callbacks.Callback):
    """Flip the head's sign before one epoch, so that epoch's validation AUC collapses."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            head = self.model.get_layer("p_fake")
            head.set_weights([-w for w in head.get_weights()])


def read_history(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    dataset_dir, manifest = write_dataset(root, COUNTS)
    base_model = ModelPreparer(model_config(root)).run().model_file
    return root, dataset_dir, manifest, base_model


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """One from-scratch run whose last epoch is sabotaged, so the best epoch is not the last one."""
    _, dataset_dir, manifest, base_model = data
    config = training_config(tmp_path_factory.mktemp("run"), base_model, dataset_dir, manifest,
                             fine_tune_epochs=7)
    result = Trainer(config).run(callbacks=[InvertOutputAtEpoch(6)])
    return config, result, read_history(config.history_file)


@pytest.fixture(scope="module")
def killed_and_restarted(data, tmp_path_factory):
    """Head phase (epoch 0), then fine-tuning (epochs 1..4) SIGKILLed after a backed-up epoch,
    then a second run in this process. Returns (config, result, epochs before the kill, epochs rerun)."""
    _, dataset_dir, manifest, base_model = data
    root = tmp_path_factory.mktemp("killed")
    # Only the top layers are fine-tuned: tracing a full backward pass twice more would be slow.
    config = training_config(root, base_model, dataset_dir, manifest, head_epochs=1, fine_tune_epochs=4,
                             fine_tune_layers=10)
    config_file = root / "config.json"
    save_training_config(config, config_file)
    metadata = config.backup_dir / "fine_tune" / "training_metadata.json"
    process = subprocess.Popen([sys.executable, str(REPO / "tests/pipeline/trainer_helpers.py"), str(config_file)],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not metadata.is_file():
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "no fine-tuning epoch was backed up in time"
            time.sleep(0.1)
        time.sleep(0.3)  # inside the helper's pause after the epoch
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    epochs_before_kill = len(read_history(config.history_file))
    recorder = EpochRecorder()
    result = Trainer(config).run(callbacks=[recorder])
    return config, result, epochs_before_kill, recorder.epochs


def test_training_loss_goes_down(trained):
    _, _, history = trained
    losses = [float(row["loss"]) for row in history[:-1]]  # the last epoch is sabotaged
    assert min(losses[1:]) < 0.8 * losses[0]


def test_class_weights_are_balanced_from_train_counts(trained):
    _, result, _ = trained
    n_fake, n_real = COUNTS["train"]
    total = n_fake + n_real
    assert result.class_weight == pytest.approx({1: total / (2 * n_fake), 0: total / (2 * n_real)})


def test_saved_model_is_the_best_on_validation(trained):
    """The saved weights are the best epoch's by val AUC, the later one on a tie."""
    config, result, history = trained
    val_aucs = [float(row["val_auc"]) for row in history]
    best_index = max(index for index, auc in enumerate(val_aucs) if auc == max(val_aucs))
    model = keras.models.load_model(config.model_file, compile=False)
    paths, labels = split_rows(read_manifest(config.manifest_file), "val", config.dataset_dir)
    scores = model.predict(build_dataset(paths, labels, IMAGE_SIZE, 8), verbose=0)
    auc = keras.metrics.AUC()
    auc.update_state(labels, scores)
    assert float(auc.result()) == pytest.approx(max(val_aucs), abs=1e-4)
    assert result.best_val_auc == pytest.approx(max(val_aucs), abs=1e-6)
    assert result.best_epoch == int(history[best_index]["epoch"])


def test_backup_is_removed_after_success(trained):
    config, result, _ = trained
    assert not config.backup_dir.exists()
    assert not result.resumed


def test_killed_run_resumes_from_last_completed_epoch(killed_and_restarted):
    _, result, epochs_before_kill, epochs_rerun = killed_and_restarted
    assert 2 <= epochs_before_kill < 5
    assert epochs_rerun == list(range(epochs_before_kill, 5))
    assert result.resumed


def test_killed_run_does_not_rerun_finished_phase(killed_and_restarted):
    _, _, _, epochs_rerun = killed_and_restarted
    assert 0 not in epochs_rerun


def test_history_numbers_epochs_across_phases_and_restarts(killed_and_restarted):
    config, result, _, _ = killed_and_restarted
    history = read_history(config.history_file)
    assert [int(row["epoch"]) for row in history] == [0, 1, 2, 3, 4]
    assert [row["phase"] for row in history] == ["head"] + ["fine_tune"] * 4
    assert result.epochs_run == 5
    assert config.model_file.is_file()
