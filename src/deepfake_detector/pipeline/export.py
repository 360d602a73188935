"""Stage `export`: deployable model files with parity checks and a model card, added to the training's
MLflow run."""
from deepfake_detector.pipeline.runner import StageContext, stage_main
from deepfake_detector.tracking.run_link import training_run_id


def run(context: StageContext) -> None:
    from deepfake_detector.components.export.exporter import Exporter

    config = context.config.get_export_config()
    with context.tracker.run("export", run_id=training_run_id(config.training_run_file),
                             tags={"stage": "train+evaluate+export"}) as tracker:
        # Tags, not params: re-exporting with other settings updates the same training run.
        tracker.set_tags(context.params("export"))
        result = Exporter(config).run()
        tracker.log_metrics({f"export_{variant}_{name}": value
                             for variant, entry in result.metrics.items()
                             for name, value in entry.items() if isinstance(value, (int, float))})
        tracker.log_artifact(result.metrics_file)
        tracker.log_artifact(result.export_dir, artifact_path="export")


if __name__ == "__main__":
    stage_main("export", run)
