"""Stage `prepare_model`: build MobileNetV2 + head with preprocessing inside, and save it."""
from deepfake_detector.pipeline.runner import StageContext, stage_main


def run(context: StageContext) -> None:
    from deepfake_detector.components.model.factory import ModelPreparer

    config = context.config.get_model_config()
    with context.tracker.run("prepare_model", tags={"stage": "prepare_model"}) as tracker:
        tracker.log_params(context.params("model"))
        result = ModelPreparer(config).run()
        tracker.log_artifact(result.summary_file)


if __name__ == "__main__":
    stage_main("prepare_model", run)
