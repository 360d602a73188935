"""Stage `cross_dataset`: the trained model on datasets from other sources (evaluate.extra_sets),
at the validation-chosen threshold, beside the in-distribution test score."""
from deepfake_detector.pipeline.runner import StageContext, stage_main
from deepfake_detector.tracking.run_link import training_run_id


def run(context: StageContext) -> None:
    from deepfake_detector.components.evaluation.cross_dataset import CrossDatasetEvaluator

    config = context.config.get_cross_dataset_config()
    with context.tracker.run("cross_dataset", run_id=training_run_id(config.training_run_file)) as tracker:
        result = CrossDatasetEvaluator(config, reference_source=context.config.params.data.source_label).run()
        tracker.log_metrics({f"cross/{name}/{key}": value for name, metrics in result.headline_metrics.items()
                             for key, value in metrics.items()})
        tracker.log_artifact(result.results_file, artifact_path="cross_dataset")


if __name__ == "__main__":
    stage_main("cross_dataset", run)
