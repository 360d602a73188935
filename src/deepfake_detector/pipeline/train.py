"""Stage `train`: two-phase training on the manifest's train/val splits, logged to MLflow, and a loud
warning when the saved model did not learn (its validation AUC interval reaches 0.5).

The MLflow run id is written to training.run_file at once, so that a killed run that resumes
from its Keras backup keeps logging to the same MLflow run, and `evaluate` adds to it. In a
multi-worker cluster only the chief opens the run and writes that file; the other workers train
without tracking.
"""
import logging

from deepfake_detector.pipeline.runner import StageContext, stage_main
from deepfake_detector.tracking.run_link import training_run_id
from deepfake_detector.utils.files import write_json_atomic

logger = logging.getLogger(__name__)


def run(context: StageContext) -> None:
    from deepfake_detector.components.evaluation.learning import check_learning
    from deepfake_detector.components.model.distribution import cluster_role
    from deepfake_detector.components.model.resume import has_saved_state
    from deepfake_detector.components.model.trainer import Trainer

    config = context.config.get_training_config()
    role = cluster_role(config.strategy)
    if not role.is_chief:
        logger.info("Worker %s of %d trains without MLflow; the chief logs the run", role.name, role.num_workers)
        Trainer(config).run()
        return
    # Training that resumes from an interrupted attempt's backup keeps logging to that attempt's run.
    run_id = training_run_id(config.run_file) if has_saved_state(config.backup_dir) else None
    with context.tracker.run("train", run_id=run_id, tags={"stage": "train"}) as tracker:
        write_json_atomic(config.run_file, {"run_id": tracker.run_id, "tracking_uri": tracker.uri})
        # Evaluation and export settings may change without retraining; those stages record them as tags.
        tracker.log_params({section: values for section, values in context.params().items()
                            if section not in ("evaluate", "export")})
        result = Trainer(config).run(callbacks=[tracker.epoch_logger()])
        # Logs a loud warning when the saved model's validation AUC interval reaches 0.5 (chance).
        learning = check_learning(result.val_labels, result.val_probs, seed=config.seed, stage="train",
                                  videos=result.val_videos)
        tracker.log_metrics({"best_val_auc": result.best_val_auc, "best_epoch": result.best_epoch,
                             "epochs_run": result.epochs_run, **(learning.as_scores() if learning else {})})
        tracker.log_artifact(result.history_file, artifact_path="training")


if __name__ == "__main__":
    stage_main("train", run)
