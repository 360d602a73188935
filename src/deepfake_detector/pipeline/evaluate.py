"""Stage `evaluate`: held-out test metrics, plots and the model, added to the training's MLflow run."""
import json

from deepfake_detector.pipeline.runner import StageContext, stage_main


def training_run_id(run_file) -> str | None:
    """The MLflow run the train stage opened, which evaluate and export add to."""
    try:
        return json.loads(run_file.read_text(encoding="utf-8")).get("run_id")
    except (OSError, ValueError):
        return None


def run(context: StageContext) -> None:
    from deepfake_detector.components.evaluation.evaluator import Evaluator

    config = context.config.get_evaluation_config()
    run_id = training_run_id(config.training_run_file)
    with context.tracker.run("evaluate", run_id=run_id, tags={"stage": "train+evaluate"}) as tracker:
        # Tags, not params: rerunning evaluate with another threshold updates the same training run.
        tracker.set_tags({"evaluate": context.config.params.evaluate.to_dict()})
        result = Evaluator(config).run()
        tracker.log_metrics({f"test_{name}": value for name, value in result.scores.items()})
        tracker.log_artifact(result.scores_file)
        tracker.log_artifact(result.predictions_file, artifact_path="evaluation")
        tracker.log_artifact(config.plots_dir, artifact_path="plots")
        tracker.log_artifact(config.split_summary_file, artifact_path="data")
        _log_model(tracker, config)


def _log_model(tracker, config) -> None:
    import keras
    import tensorflow as tf

    model = keras.models.load_model(config.model_file, compile=False)
    tracker.log_keras_model(model, config.image_size,
                            pip_requirements=[f"tensorflow-cpu=={tf.__version__}", f"keras=={keras.__version__}"])


if __name__ == "__main__":
    stage_main("evaluate", run)
