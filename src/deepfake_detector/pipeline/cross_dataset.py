"""Stage `cross_dataset`: the trained model on datasets from other sources (evaluate.extra_sets),
at the validation-chosen threshold, beside the in-distribution test score."""
import json
import logging

from deepfake_detector.pipeline.evaluate import training_run_id
from deepfake_detector.pipeline.runner import StageContext, stage_main

logger = logging.getLogger(__name__)

REFERENCE_KEYS = ("n_test", "roc_auc", "accuracy", "eer", "average_precision")


def run(context: StageContext) -> None:
    from deepfake_detector.components.evaluation.cross_dataset import (
        prepare_extra_set,
        score_extra_sets,
        write_cross_dataset,
    )
    from deepfake_detector.components.model.trained_model import load_trained_model, read_decision_rule

    config = context.config.get_cross_dataset_config()
    rule = read_decision_rule(config.scores_file)
    scores = json.loads(config.scores_file.read_text(encoding="utf-8"))
    reference = {"name": "test (in-distribution)", "source": context.config.params.data.source,
                 **{("n" if key == "n_test" else key): scores.get(key) for key in REFERENCE_KEYS}}
    if not config.extra_sets:
        logger.info("evaluate.extra_sets is empty: no other datasets to score")
    with context.tracker.run("cross_dataset", run_id=training_run_id(config.training_run_file)) as tracker:
        sets = {extra.name: prepare_extra_set(extra, config.ingestion, config.root_dir,
                                              min_image_size=config.min_image_size)
                for extra in config.extra_sets}
        rows = []
        if sets:
            model = load_trained_model(config.model_file, config.image_size)
            rows = score_extra_sets(model, sets, image_size=config.image_size, batch_size=config.batch_size,
                                    threshold=rule.raw_threshold,
                                    sources={extra.name: extra.source for extra in config.extra_sets})
        write_cross_dataset(rows, config.results_file, reference)
        for row in rows:
            logger.info("%s: ROC AUC %s, accuracy %.4f on %d images (in-distribution test ROC AUC %.4f)",
                        row["name"], "n/a" if row.get("roc_auc") is None else f"{row['roc_auc']:.4f}",
                        row["accuracy"], row["n"], reference["roc_auc"] or float("nan"))
            tracker.log_metrics({f"cross/{row['name']}/{key}": row[key] for key in ("roc_auc", "accuracy", "eer")
                                 if row.get(key) is not None})
        tracker.log_artifact(config.results_file, artifact_path="cross_dataset")


if __name__ == "__main__":
    stage_main("cross_dataset", run)
