"""Stage `evaluate`: held-out test metrics, plots and the model, added to the training's MLflow run."""
import re

from deepfake_detector.pipeline.runner import StageContext, stage_main
from deepfake_detector.tracking.run_link import training_run_id


def run(context: StageContext) -> None:
    from deepfake_detector.components.evaluation.evaluator import Evaluator

    config = context.config.get_evaluation_config()
    with context.tracker.run("evaluate", run_id=training_run_id(config.training_run_file),
                             tags={"stage": "train+evaluate"}) as tracker:
        # Tags, not params: rerunning evaluate with another threshold updates the same training run.
        tracker.set_tags(context.params("evaluate"))
        result = Evaluator(config).run()
        # Test metrics under test_; the validation check and counts under their own names, not as "test".
        scores = dict(result.scores)
        per_source = scores.pop("per_source", {})
        video = scores.pop("video", None) or {}
        tracker.log_metrics({(name if name.startswith(("val_", "n_")) else f"test_{name}"): value
                             for name, value in scores.items()})
        # Video-level test metrics and each rule's val AUC (a video dataset); the rule chosen is a tag.
        tracker.log_metrics({f"test_video/{name}": value for name, value in video.items()})
        if video:
            tracker.set_tags({"video_aggregation": video["aggregation"]})
        tracker.log_metrics({f"test_source/{metric_safe(source)}/{name}": value
                             for source, metrics in per_source.items() for name, value in metrics.items()})
        tracker.log_artifact(result.scores_file)
        tracker.log_artifact(result.predictions_file, artifact_path="evaluation")
        tracker.log_artifact(config.plots_dir, artifact_path="plots")
        tracker.log_artifact(config.split_summary_file, artifact_path="data")
        tracker.log_keras_model(config.model_file, config.image_size)


def metric_safe(name: str) -> str:
    """A data.source entry as part of an MLflow metric name, kept to letters, digits and _-.: a path's
    or URL's slashes would read as nesting, and some stores refuse a colon."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "source"


if __name__ == "__main__":
    stage_main("evaluate", run)
