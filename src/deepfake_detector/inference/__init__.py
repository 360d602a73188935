"""Inference: decode and resize images as training did, then score them with a Predictor (TFLite or
Keras backend) and explain the score with a heatmap. Importing this package never loads TensorFlow."""
from deepfake_detector.inference.images import decode_image, load_image, resize_for_model
from deepfake_detector.inference.predictor import (
    Explanation,
    KerasPredictor,
    Predictor,
    TFLitePredictor,
    load_predictor,
)

__all__ = [
    "Explanation", "KerasPredictor", "Predictor", "TFLitePredictor",
    "decode_image", "load_image", "load_predictor", "resize_for_model",
]
