"""The pipeline's stages in DAG order; main.py and the CLI run them from here."""
from deepfake_detector.pipeline import (
    cross_dataset,
    evaluate,
    export,
    faces,
    frames,
    ingest,
    prepare_model,
    report,
    robustness,
    shortcut_audit,
    train,
    validate,
)
from deepfake_detector.pipeline.runner import StageFunction

STAGES: dict[str, StageFunction] = {
    "ingest": ingest.run,
    "frames": frames.run,
    "validate": validate.run,
    "faces": faces.run,
    "prepare_model": prepare_model.run,
    "train": train.run,
    "evaluate": evaluate.run,
    "robustness": robustness.run,
    "cross_dataset": cross_dataset.run,
    "shortcut_audit": shortcut_audit.run,
    "report": report.run,
    "export": export.run,
}
