"""Stage `robustness`: the test split re-scored under JPEG, re-scaling, blur, noise, crop and
brightness/contrast at several severities, added to the training's MLflow run."""
from deepfake_detector.pipeline.runner import StageContext, stage_main
from deepfake_detector.tracking.run_link import training_run_id


def run(context: StageContext) -> None:
    from deepfake_detector.components.evaluation.robustness import RobustnessEvaluator

    config = context.config.get_robustness_config()
    with context.tracker.run("robustness", run_id=training_run_id(config.training_run_file)) as tracker:
        result = RobustnessEvaluator(config).run()
        tracker.log_metrics({f"robustness/{condition}/roc_auc": auc
                             for condition, auc in result.roc_auc_by_condition.items()})
        for path in result.files:
            tracker.log_artifact(path, artifact_path="robustness")


if __name__ == "__main__":
    stage_main("robustness", run)
