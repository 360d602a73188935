"""Stage `shortcut_audit`: can one accidental cue alone (file size, JPEG history, dimensions, EXIF,
colour, border, a thumbnail) tell fake from real on the train split? Added to the training's MLflow run."""
from deepfake_detector.pipeline.evaluate import training_run_id
from deepfake_detector.pipeline.runner import StageContext, stage_main

AUDITED_SPLIT = "train"  # what the detector learned from: a cue there is a cue it could learn


def run(context: StageContext) -> None:
    from deepfake_detector.components.data.datasets import read_manifest, split_rows
    from deepfake_detector.components.evaluation.shortcut_audit import audit_shortcuts, thumbnail_scorer, write_audit
    from deepfake_detector.components.model.trained_model import load_trained_model

    config = context.config.get_shortcut_audit_config()
    paths, labels = split_rows(read_manifest(config.manifest_file), AUDITED_SPLIT, config.dataset_dir)
    model = load_trained_model(config.model_file, config.image_size)

    def predict(batch):
        return model.predict(batch, batch_size=config.batch_size, verbose=0).reshape(-1)

    with context.tracker.run("shortcut_audit", run_id=training_run_id(config.training_run_file)) as tracker:
        result = audit_shortcuts(paths, labels, seed=config.seed, warn_auc=config.warn_auc,
                                 model_scorer=thumbnail_scorer(predict, config.image_size,
                                                               batch_size=config.batch_size))
        write_audit(result, config.results_file)
        tracker.log_metrics({f"shortcut/{name}/auc": entry["auc"] for name, entry in result["cues"].items()})
        tracker.set_tags({"shortcut_audit.flagged": ",".join(result["flagged"]) or "none"})
        tracker.log_artifact(config.results_file, artifact_path="shortcut_audit")


if __name__ == "__main__":
    stage_main("shortcut_audit", run)
