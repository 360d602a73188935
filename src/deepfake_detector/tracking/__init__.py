"""Experiment tracking: MLflow locally by default, a remote such as DagsHub through the environment."""
from deepfake_detector.tracking.mlflow_tracking import ExperimentTracker, flatten

__all__ = ["ExperimentTracker", "flatten"]
