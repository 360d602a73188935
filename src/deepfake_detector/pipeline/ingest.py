"""Stage `ingest`: fetch data.source (demo, folder, archive, URL or Kaggle) and index its images."""
from deepfake_detector.pipeline.runner import StageContext, stage_main


def run(context: StageContext) -> None:
    from deepfake_detector.components.data.ingestion import DataIngestion

    config = context.config.get_data_ingestion_config()
    with context.tracker.run("ingest", tags={"stage": "ingest"}) as tracker:
        # The label drops user names, passwords and query strings, which may hold tokens.
        tracker.log_params({"data": {"source": config.source_label, "sha256": config.sha256}})
        result = DataIngestion(config).run()
        tracker.log_metrics({"n_files": result.n_files,
                             **{f"n_{name}": count for name, count in result.class_counts.items()}})
        tracker.log_artifact(result.report_file)


if __name__ == "__main__":
    stage_main("ingest", run)
