"""Stage `validate`: decode every image, quarantine bad ones, group duplicates, split leak-free."""
from deepfake_detector.pipeline.runner import StageContext, stage_main


def run(context: StageContext) -> None:
    from deepfake_detector.components.data.validation import DataValidation

    config = context.config.get_data_validation_config()
    with context.tracker.run("validate", tags={"stage": "validate"}) as tracker:
        data = context.params("data")["data"]
        tracker.log_params({"data": {**data, "source": context.config.params.data.source_label}})
        result = DataValidation(config).run()
        tracker.log_metrics({"n_good": result.n_good, "n_bad": result.n_bad})
        for path in (result.split_summary_file, result.quarantine_file):
            tracker.log_artifact(path, artifact_path="data")


if __name__ == "__main__":
    stage_main("validate", run)
