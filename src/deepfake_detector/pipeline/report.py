"""Stage `report`: one static HTML page with every evaluation output, added to the training's MLflow run."""
from deepfake_detector.pipeline.runner import StageContext, stage_main
from deepfake_detector.tracking.run_link import training_run_id


def run(context: StageContext) -> None:
    from deepfake_detector.components.evaluation.report import ReportBuilder

    config = context.config.get_report_config()
    # Written before the run is reopened: a report that fails must not mark the training run FAILED.
    result = ReportBuilder(config, project_root=context.config.root).run()
    with context.tracker.run("report", run_id=training_run_id(config.training_run_file)) as tracker:
        tracker.log_artifact(result.html_file, artifact_path="report")


if __name__ == "__main__":
    stage_main("report", run)
