"""The pipeline's stages in DAG order; main.py and the CLI run them from here."""
from deepfake_detector.pipeline import evaluate, export, ingest, prepare_model, train, validate
from deepfake_detector.pipeline.runner import StageFunction

STAGES: dict[str, StageFunction] = {
    "ingest": ingest.run,
    "validate": validate.run,
    "prepare_model": prepare_model.run,
    "train": train.run,
    "evaluate": evaluate.run,
    "export": export.run,
}
