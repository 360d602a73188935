"""The best-weights checkpoint: which epoch's weights become model.h5."""
from __future__ import annotations

import json

import keras
import numpy as np

from deepfake_detector.components.model.trainer import BestWeightsCheckpoint


def checkpoint_on(tmp_path) -> tuple[BestWeightsCheckpoint, keras.Model]:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    checkpoint = BestWeightsCheckpoint(tmp_path / "best.weights.h5", tmp_path / "best.json")
    checkpoint.set_model(model)
    return checkpoint, model


def run_epochs(checkpoint, model, aucs: list[float], first_epoch: int = 0) -> None:
    for epoch, auc in enumerate(aucs, start=first_epoch):
        model.layers[0].kernel.assign(np.full((2, 1), float(epoch), dtype="float32"))  # tells epochs apart
        checkpoint.on_epoch_end(epoch, {"val_auc": auc})


def saved_epoch(tmp_path, model) -> int:
    model.load_weights(tmp_path / "best.weights.h5")
    return int(model.layers[0].kernel.numpy()[0, 0])


def test_a_saturated_auc_keeps_the_longest_trained_weights(tmp_path):
    """Once val AUC sits at 1.0, each later epoch at 1.0 replaces the saved weights: training that
    goes on learning what validation does not show is not thrown away."""
    checkpoint, model = checkpoint_on(tmp_path)
    run_epochs(checkpoint, model, [0.9, 1.0, 1.0, 0.99, 1.0, 0.98])
    assert checkpoint.best_epoch == 4
    assert saved_epoch(tmp_path, model) == 4
    assert json.loads((tmp_path / "best.json").read_text()) == {"epoch": 4, "val_auc": 1.0}


def test_a_lower_auc_never_replaces_a_higher_one(tmp_path):
    checkpoint, model = checkpoint_on(tmp_path)
    run_epochs(checkpoint, model, [0.95, 0.97, 0.96, 0.5])
    assert checkpoint.best_epoch == 1
    assert saved_epoch(tmp_path, model) == 1


def test_a_resumed_run_compares_with_the_recorded_best(tmp_path):
    first, model = checkpoint_on(tmp_path)
    run_epochs(first, model, [0.99])
    resumed = BestWeightsCheckpoint(tmp_path / "best.weights.h5", tmp_path / "best.json")
    resumed.set_model(model)
    run_epochs(resumed, model, [0.98], first_epoch=1)
    assert resumed.best_epoch == 0
    assert saved_epoch(tmp_path, model) == 0
