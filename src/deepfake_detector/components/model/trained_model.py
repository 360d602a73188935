"""The trained model and the decision rule the evaluate stage fixed, as every scoring stage reads them.

Robustness, cross-dataset and audit stages score model.h5 directly, so they need the decision
boundary on the model's raw output (`raw_threshold`), not the calibrated one serving applies.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from deepfake_detector.contracts.errors import ModelError


@dataclass(frozen=True)
class DecisionRule:
    threshold: float          # on the calibrated P(fake): what serving and scores.json use
    raw_threshold: float      # the same boundary on the model's own output
    temperature: float        # calibrated = sigmoid(logit(raw) / temperature)


def load_trained_model(path: Path, image_size: int):
    """The Keras model of the train stage, checked to take image_size images and give one P(fake)."""
    import keras

    if not path.is_file():
        raise ModelError(f"{path}: trained model not found; run the train stage first")
    try:
        model = keras.models.load_model(path, compile=False)
    except (OSError, ValueError, TypeError) as error:
        raise ModelError(f"{path}: cannot load the model: {error}") from error
    if tuple(model.output_shape[1:]) != (1,):
        raise ModelError(f"{path}: expected one P(fake) output per image, got output shape {model.output_shape}")
    height, width = model.input_shape[1:3]
    if {height, width} - {None, image_size}:
        raise ModelError(f"{path}: the model takes {height}x{width} images but params.yaml: model.image_size is "
                         f"{image_size}")
    return model


def read_decision_rule(scores_file: Path) -> DecisionRule:
    """The evaluate stage's threshold and temperature, from scores.json."""
    try:
        scores = json.loads(scores_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{scores_file}: not found; run the evaluate stage first") from None
    except (OSError, ValueError) as error:
        raise ModelError(f"{scores_file}: unreadable ({error}); rerun the evaluate stage") from None
    try:
        threshold = float(scores["threshold"])
        temperature = float(scores.get("temperature", 1.0))
        raw_threshold = float(scores.get("threshold_uncalibrated", threshold))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ModelError(f"{scores_file}: no numeric threshold; rerun the evaluate stage") from None
    return DecisionRule(threshold=threshold, raw_threshold=raw_threshold, temperature=temperature)
