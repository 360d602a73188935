"""The report's video-level table: shown under the metrics when scores.json has a `video` block (the rule chosen on
val videos, each rule's val AUC, the test videos' metrics with intervals), absent for still images."""
import re

from deepfake_detector.components.evaluation.report_inputs import ReportInputs
from deepfake_detector.contracts.scores import read_scores
from tests.unit.test_report import PARAMS, SCORES, predictions_frame, render, section, write_scores

VIDEO = {
    "aggregation": "top_k_mean", "aggregation_val_roc_auc": {"mean": 0.8, "median": 0.78, "max": 0.83,
                                                             "top_k_mean": 0.86},
    "chosen_on": "val videos", "threshold": 0.61234, "threshold_rule": "eer", "n_val_videos": 12,
    "n_test_videos": 14, "frames_per_video": 16.0, "frame_intervals": "by video",
    "accuracy": 0.857, "balanced_accuracy": 0.85, "roc_auc": 0.91, "roc_auc_ci_low": 0.74, "roc_auc_ci_high": 1.0,
    "eer": 0.14, "f1": 0.86, "average_precision": 0.9,
}


def report_inputs(folder, scores):
    return ReportInputs(scores=read_scores(write_scores(folder / "scores.json", scores)), params=PARAMS,
                        predictions=predictions_frame())


def test_the_chosen_rule_and_each_rules_val_auc_are_shown(tmp_path):
    metrics = section(render(report_inputs(tmp_path, {**SCORES, "video": VIDEO})), "metrics")
    assert "Video-level (test videos)" in metrics
    chosen = re.search(r'<tr data-rule="top_k_mean" class="headline">(.*?)</tr>', metrics, re.S).group(1)
    assert "top_k_mean (chosen)" in chosen and "0.860" in chosen
    assert "0.800" in re.search(r'<tr data-rule="mean">(.*?)</tr>', metrics, re.S).group(1)
    assert "a video is fake at 0.6123 or above (eer)" in metrics and "14 videos, median 16.0 frames" in metrics


def test_test_video_metrics_come_with_their_intervals(tmp_path):
    metrics = section(render(report_inputs(tmp_path, {**SCORES, "video": VIDEO})), "metrics")
    auc = re.search(r'<tr data-video-metric="roc_auc">(.*?)</tr>', metrics, re.S).group(1)
    assert "0.910" in auc and "0.740 – 1.000" in auc
    accuracy = re.search(r'<tr data-video-metric="accuracy">(.*?)</tr>', metrics, re.S).group(1)
    assert "0.857" in accuracy and "–" not in accuracy


def test_still_images_get_no_video_table(tmp_path):
    metrics = section(render(report_inputs(tmp_path, SCORES)), "metrics")
    assert "Video-level" not in metrics and "data-video-metric" not in metrics
