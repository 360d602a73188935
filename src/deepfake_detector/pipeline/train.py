"""Stage `train`: two-phase training on the manifest's train/val splits, logged to MLflow.

The MLflow run id is written to training.run_file at once, so that a killed run that resumes
from its Keras backup keeps logging to the same MLflow run, and `evaluate` adds to it. In a
multi-worker cluster only the chief opens the run and writes that file; the other workers train
without tracking.
"""
import json
import logging

from deepfake_detector.pipeline.runner import StageContext, stage_main
from deepfake_detector.utils.files import write_json_atomic

logger = logging.getLogger(__name__)


def _previous_run_id(config) -> str | None:
    """The MLflow run of an interrupted attempt, when training will resume from its backup."""
    has_backup = config.backup_dir.exists() and any(config.backup_dir.rglob("*"))
    if not (has_backup and config.run_file.exists()):
        return None
    try:
        return json.loads(config.run_file.read_text(encoding="utf-8")).get("run_id")
    except (OSError, ValueError):
        return None


def run(context: StageContext) -> None:
    from deepfake_detector.components.model.distribution import cluster_role
    from deepfake_detector.components.model.trainer import Trainer

    config = context.config.get_training_config()
    role = cluster_role(config.strategy)
    if not role.is_chief:
        logger.info("Worker %s of %d trains without MLflow; the chief logs the run", role.name, role.num_workers)
        Trainer(config).run()
        return
    with context.tracker.run("train", run_id=_previous_run_id(config), tags={"stage": "train"}) as tracker:
        write_json_atomic(config.run_file, {"run_id": tracker.run_id, "tracking_uri": tracker.uri})
        # Evaluation and export settings may change without retraining; those stages record them as tags.
        params = context.config.params.to_dict()
        tracker.log_params({section: values for section, values in params.items()
                            if section not in ("evaluate", "export")})
        result = Trainer(config).run(callbacks=[tracker.epoch_logger()])
        tracker.log_metrics({"best_val_auc": result.best_val_auc, "best_epoch": result.best_epoch,
                             "epochs_run": result.epochs_run})
        tracker.log_artifact(result.history_file, artifact_path="training")


if __name__ == "__main__":
    stage_main("train", run)
