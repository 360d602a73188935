"""Inference: decode images and fit them to the model input as training did, then score them with a Predictor (TFLite or
Keras backend) and explain the score with a heatmap. Importing this package never loads TensorFlow."""
from deepfake_detector.inference.images import decode_image, fit_for_model, load_image, resize_for_model
from deepfake_detector.inference.predictor import Explanation, Predictor, TFLitePredictor
from deepfake_detector.inference.served_model import ServedModel, load_predictor, load_served_model

__all__ = [
    "Explanation", "Predictor", "ServedModel", "TFLitePredictor",
    "decode_image", "fit_for_model", "load_image", "load_predictor", "load_served_model", "resize_for_model",
]
