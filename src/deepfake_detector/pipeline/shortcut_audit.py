"""Stage `shortcut_audit`: can one accidental cue alone (file size, JPEG history, dimensions, EXIF,
color, border, a thumbnail) tell fake from real on the train split? Added to the training's MLflow run."""
from deepfake_detector.pipeline.runner import StageContext, stage_main
from deepfake_detector.tracking.run_link import training_run_id


def run(context: StageContext) -> None:
    from deepfake_detector.components.evaluation.shortcut_audit import ShortcutAuditor

    config = context.config.get_shortcut_audit_config()
    with context.tracker.run("shortcut_audit", run_id=training_run_id(config.training_run_file)) as tracker:
        result = ShortcutAuditor(config).run()
        tracker.log_metrics({f"shortcut/{name}/auc": auc for name, auc in result.auc_by_cue.items()})
        tracker.set_tags({"shortcut_audit.flagged": ",".join(result.flagged) or "none"})
        tracker.log_artifact(result.results_file, artifact_path="shortcut_audit")


if __name__ == "__main__":
    stage_main("shortcut_audit", run)
