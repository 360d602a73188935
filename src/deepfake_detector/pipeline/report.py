"""Stage `report`: one static HTML page with every evaluation output, added to the training's MLflow run."""
import json
import logging

from deepfake_detector.pipeline.evaluate import training_run_id
from deepfake_detector.pipeline.runner import StageContext, stage_main

logger = logging.getLogger(__name__)


def _read_json(path):
    """A stage output, or None (with a note) when that stage has not produced it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        logger.warning("%s not found: the report shows that section as not produced", path)
        return None


def run(context: StageContext) -> None:
    import pandas as pd

    from deepfake_detector.components.evaluation.report import build_report
    from deepfake_detector.utils.provenance import git_commit

    config = context.config.get_report_config()
    scores = json.loads(config.scores_file.read_text(encoding="utf-8"))
    predictions = pd.read_csv(config.predictions_file) if config.predictions_file.is_file() else None
    plots = {path.stem: path for path in sorted(config.plots_dir.glob("*.png"))}
    reliability = plots.pop("reliability", None)
    with context.tracker.run("report", run_id=training_run_id(config.training_run_file)) as tracker:
        html = build_report(
            out_file=config.html_file, scores=scores, params=config.params, plots=plots, predictions=predictions,
            dataset_dir=config.dataset_dir, threshold=float(scores["threshold"]),
            robustness=_read_json(config.robustness_metrics_file),
            robustness_png=config.robustness_png_file if config.robustness_png_file.is_file() else None,
            cross_dataset=_read_json(config.cross_dataset_file),
            shortcut_audit=_read_json(config.shortcut_audit_file), reliability_png=reliability,
            git=git_commit(context.config.root))
        logger.info("Report: %s", html)
        tracker.log_artifact(html, artifact_path="report")


if __name__ == "__main__":
    stage_main("report", run)
