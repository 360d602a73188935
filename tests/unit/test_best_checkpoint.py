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


def run_epochs(checkpoint, model, epochs: list[dict[str, float]]) -> None:
    for epoch, logs in enumerate(epochs):
        model.layers[0].kernel.assign(np.full((2, 1), float(epoch), dtype="float32"))  # tells epochs apart
        checkpoint.on_epoch_end(epoch, logs)


def saved_epoch(tmp_path, model) -> int:
    model.load_weights(tmp_path / "best.weights.h5")
    return int(model.layers[0].kernel.numpy()[0, 0])


def test_a_saturated_auc_keeps_improving_by_loss(tmp_path):
    """Once val AUC sits at 1.0, later epochs with a lower loss win: longer training is not wasted."""
    checkpoint, model = checkpoint_on(tmp_path)
    run_epochs(checkpoint, model, [{"val_auc": 0.9, "val_loss": 0.5}, {"val_auc": 1.0, "val_loss": 0.3},
                                   {"val_auc": 1.0, "val_loss": 0.1}, {"val_auc": 1.0, "val_loss": 0.2}])
    assert checkpoint.best_epoch == 2
    assert saved_epoch(tmp_path, model) == 2
    assert json.loads((tmp_path / "best.json").read_text()) == {"epoch": 2, "val_auc": 1.0, "val_loss": 0.1}


def test_a_higher_auc_wins_over_a_lower_loss(tmp_path):
    checkpoint, model = checkpoint_on(tmp_path)
    run_epochs(checkpoint, model, [{"val_auc": 0.95, "val_loss": 0.05}, {"val_auc": 0.97, "val_loss": 0.4}])
    assert checkpoint.best_epoch == 1


def test_a_resumed_run_compares_with_the_recorded_best(tmp_path):
    first, model = checkpoint_on(tmp_path)
    run_epochs(first, model, [{"val_auc": 1.0, "val_loss": 0.1}])
    resumed = BestWeightsCheckpoint(tmp_path / "best.weights.h5", tmp_path / "best.json")
    resumed.set_model(model)
    resumed.on_epoch_end(1, {"val_auc": 1.0, "val_loss": 0.2})
    assert resumed.best_epoch == 0
    assert saved_epoch(tmp_path, model) == 0
