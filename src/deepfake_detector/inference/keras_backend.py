"""The Keras serving backend: the trained model (.h5 or .keras) behind the Predictor interface, explained
by Grad-CAM. TensorFlow is imported only when a KerasPredictor is built, so importing this module is free.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from deepfake_detector.contracts.decision_rule import DEFAULT_RULE, DecisionRule
from deepfake_detector.contracts.errors import ModelError
from deepfake_detector.contracts.input_fit import LEGACY_INPUT_FIT
from deepfake_detector.contracts.layers import BACKBONE_NAME, OUTPUT_NAME
from deepfake_detector.inference.explanations import build_grad_cam
from deepfake_detector.inference.keras_model import check_model_shape, load_keras_model
from deepfake_detector.inference.predictor import Predictor

logger = logging.getLogger(__name__)


class KerasPredictor(Predictor):
    """The trained Keras model through one compiled tf.function; explanations by Grad-CAM on the
    backbone's last feature map (occlusion if the model has another layout).
    TensorFlow runs traced graphs concurrently, so no lock is needed."""

    backend = "keras"

    def __init__(self, model_path: str | Path, *, rule: DecisionRule = DEFAULT_RULE,
                 input_fit: str = LEGACY_INPUT_FIT):
        import tensorflow as tf

        path = Path(model_path)
        model = load_keras_model(path, what="Keras model")
        shape = tuple(model.input_shape) if not isinstance(model.input_shape, list) else ()
        if len(shape) != 4 or shape[1] is None or shape[1] != shape[2]:
            raise ModelError(f"{path}: expected a square (N, S, S, 3) image input, got {model.input_shape}")
        check_model_shape(model, path, shape[1])  # three channels in, one P(fake) out
        super().__init__(path, shape[1], "keras", rule, input_fit)
        self._model = model
        spec = tf.TensorSpec([None, self.image_size, self.image_size, 3], tf.float32)
        self._forward = tf.function(lambda images: model(images, training=False), input_signature=[spec])
        self._forward.get_concrete_function()  # trace once, here, rather than racing in the first requests
        self._grad_cam = build_grad_cam(model, BACKBONE_NAME, OUTPUT_NAME)
        if self._grad_cam is None:
            logger.info("%s: no %r/%r layers for Grad-CAM; explanations use occlusion", path, BACKBONE_NAME,
                        OUTPUT_NAME)

    def close(self) -> None:
        self._model = self._forward = self._grad_cam = None

    def _predict_batch(self, batch: np.ndarray) -> np.ndarray:
        return self._forward(batch).numpy().reshape(len(batch), -1)[:, 0].astype(np.float64)

    def _explain(self, image: np.ndarray, threshold: float) -> tuple[np.ndarray, float, str]:
        if self._grad_cam is None:
            return super()._explain(image, threshold)
        heatmap, p_fake = self._grad_cam(image, threshold)
        return heatmap, p_fake, "grad-cam"
