"""Stage `robustness`: the test split re-scored under JPEG, re-scaling, blur, noise, crop and
brightness/contrast at several severities, added to the training's MLflow run."""
from deepfake_detector.pipeline.evaluate import training_run_id
from deepfake_detector.pipeline.runner import StageContext, stage_main


def _condition_name(perturbation: str, severity: float | None) -> str:
    """"jpeg_50" for a perturbed condition, "none" for the clean images (severity None)."""
    return perturbation if severity is None else f"{perturbation}_{severity:g}"


def run(context: StageContext) -> None:
    from deepfake_detector.components.data.datasets import read_manifest, split_rows
    from deepfake_detector.components.evaluation.robustness import score_under_perturbations, write_robustness_outputs
    from deepfake_detector.components.model.trained_model import load_trained_model, read_decision_rule

    config = context.config.get_robustness_config()
    model = load_trained_model(config.model_file, config.image_size)
    rule = read_decision_rule(config.scores_file)
    paths, labels = split_rows(read_manifest(config.manifest_file), "test", config.dataset_dir)
    with context.tracker.run("robustness", run_id=training_run_id(config.training_run_file)) as tracker:
        table = score_under_perturbations(model, paths, labels, image_size=config.image_size,
                                          batch_size=config.batch_size, severities=config.severities,
                                          threshold=rule.raw_threshold, seed=config.seed)
        write_robustness_outputs(table, config.metrics_file, config.plot_file, config.png_file)
        tracker.log_metrics({f"robustness/{_condition_name(row.perturbation, row.severity)}/roc_auc": row.roc_auc
                             for row in table.itertuples()})
        for path in (config.metrics_file, config.plot_file, config.png_file):
            tracker.log_artifact(path, artifact_path="robustness")


if __name__ == "__main__":
    stage_main("robustness", run)
