"""The evaluate stage's worker: scores the trained model on the held-out test split.

The temperature (calibration) and the decision threshold are fixed on the validation split first,
so nothing about the test split leaks into the numbers reported for it. Every P(fake) this stage
writes, and the threshold, are calibrated; `threshold_uncalibrated` is the same decision boundary
on the model's raw output, for stages that score model.h5 directly. `model_sha256` names the
model.h5 the scores belong to, so a consumer can tell scores of another model apart.

scores.json also says how the rule came about, for the model card: `threshold_rule` (eer, youden,
or given: a number in evaluate.threshold) and `temperature_status` (fitted, val_separated: kept at
1.0, or off), and whether the model learned at all (learning.py: val_roc_auc with its interval).
When data.source was a list, `per_source` holds the test metrics of each source on its own.

When frames were sampled from videos (the manifest's `video` column), scores.json also holds a `video` block
(video_metrics.py: the aggregation rule and a video threshold chosen on the val videos, the test videos' metrics
with intervals over videos), and the frame-level *_ci_low/_ci_high come from a stratified bootstrap that resamples
whole videos (bootstrap.cluster_bootstrap_intervals): frames of one clip are not independent, and resampling them
one by one would make the intervals too narrow. predictions.csv then carries the `video` column too.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from deepfake_detector.components.data.datasets import VIDEO_COLUMN, build_dataset, read_manifest, split_rows
from deepfake_detector.components.data.layouts import SOURCE_COLUMN
from deepfake_detector.components.evaluation.bootstrap import bootstrap_intervals
from deepfake_detector.components.evaluation.calibration import (
    CALIBRATION_OFF,
    TemperatureFit,
    apply_temperature,
    calibrate_threshold,
    fit_temperature,
    write_reliability_diagram,
)
from deepfake_detector.components.evaluation.learning import check_learning
from deepfake_detector.components.evaluation.metrics import (
    choose_threshold,
    compute_scores,
    equal_error_rate,
    predict_labels,
)
from deepfake_detector.components.evaluation.plots import write_plots
from deepfake_detector.components.evaluation.video_metrics import (
    SplitVideos,
    check_video_splits,
    evaluate_videos,
    frame_videos,
    has_videos,
    missing_video_classes,
)
from deepfake_detector.config.entities import EvaluationConfig
from deepfake_detector.contracts.errors import DataValidationError, ModelError
from deepfake_detector.contracts.labels import CLASS_NAMES, FAKE, REAL
from deepfake_detector.inference.keras_model import load_keras_model
from deepfake_detector.utils.files import atomic_path, sha256_file, write_json_atomic

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS = ("path", "label", "split", "p_fake", "p_fake_uncalibrated", "predicted")
RELIABILITY_FILES = ("reliability.png", "reliability.json")
EVALUATED_SPLITS = ("val", "test")
THRESHOLD_LABELS = {"eer": "EER on val", "youden": "Youden's J on val"}
GIVEN_THRESHOLD = "given"              # threshold_rule of a number in evaluate.threshold
# Metrics recorded twice: calibrated under their own name, the model's own output with this suffix.
CALIBRATION_DEPENDENT = ("ece_positive_class", "ece_top_label", "log_loss")
UNCALIBRATED = "_uncalibrated"


@dataclass(frozen=True)
class EvaluationResult:
    scores: dict[str, Any]             # what scores_file holds: test metrics, counts, decision rule and its origin
    model_sha256: str                  # the evaluated model.h5, also recorded in scores_file
    scores_file: Path
    predictions_file: Path
    plot_files: dict[str, Path]        # file name (e.g. "roc.json") -> path
    threshold: float


@dataclass(frozen=True)
class SplitPredictions:
    rows: pd.DataFrame                 # the split's manifest rows, in manifest order
    labels: np.ndarray
    raw_probs: np.ndarray              # the model's P(fake) per row
    probs: np.ndarray                  # calibrated P(fake) (the raw ones until calibrated)

    def calibrated(self, temperature: float) -> SplitPredictions:
        return SplitPredictions(self.rows, self.labels, self.raw_probs,
                                apply_temperature(self.raw_probs, temperature))

    @property
    def videos(self) -> np.ndarray:
        """The video of each row ("" for a still image)."""
        return frame_videos(self.rows)


class Evaluator:
    """Predicts P(fake) for the val and test splits, picks the threshold on val, and writes
    scores.json, per-image predictions and the plot files for test."""

    def __init__(self, config: EvaluationConfig) -> None:
        self.config = config

    def run(self) -> EvaluationResult:
        config = self.config
        manifest = read_manifest(config.manifest_file)
        for split in EVALUATED_SPLITS:
            self._check_split(manifest, split)
        is_video = has_videos(manifest)
        if is_video:
            check_video_splits(manifest, config.manifest_file)
        missing_videos = missing_video_classes(manifest, EVALUATED_SPLITS) if is_video else []
        if missing_videos:
            logger.warning("No video-level evaluation (so no aggregation rule in the model card; serving's auto uses "
                           "mean): %s. Frame-level intervals still resample whole videos", "; ".join(missing_videos))

        model = load_keras_model(config.model_file, config.image_size)
        model_sha256 = sha256_file(config.model_file)
        val = self._predict(model, manifest, "val")
        learning = check_learning(val.labels, val.raw_probs, seed=config.seed, stage="evaluate",  # both classes
                                  videos=val.videos if is_video else None)
        fit = self._fit_temperature(val)
        temperature = fit.temperature
        val = val.calibrated(temperature)
        # Ranking and decisions are computed on the model's own output: temperature scaling cannot
        # change them in exact arithmetic, and in floating point a sharpening temperature can round
        # near-certain scores to the same 1.0, which would create ties that are not in the model.
        raw_threshold = self._raw_threshold(val, temperature)
        threshold = calibrate_threshold(raw_threshold, temperature)
        logger.info("Threshold %.4f on calibrated P(fake), %.4f on the model's output (%s)", threshold,
                    raw_threshold, self._threshold_label())
        test = self._predict(model, manifest, "test").calibrated(temperature)

        scores = compute_scores(test.labels, test.raw_probs, raw_threshold, config.calibration_bins)
        calibrated = compute_scores(test.labels, test.probs, threshold, config.calibration_bins)
        for name in CALIBRATION_DEPENDENT:
            scores[name + UNCALIBRATED], scores[name] = scores[name], calibrated[name]
        scores.update(
            threshold=threshold, temperature=temperature, threshold_uncalibrated=raw_threshold,
            threshold_rule=self._threshold_rule(), temperature_status=fit.status,
            total_parameters=int(model.count_params()), n_test=int(test.labels.size), n_val=int(val.labels.size),
            **learning.as_scores())
        if SOURCE_COLUMN in test.rows.columns:
            scores["per_source"] = per_source_scores(test, raw_threshold)
            for source, metrics in scores["per_source"].items():
                logger.info("Test on %s: %d images, accuracy %.4f, ROC AUC %s", source, metrics["n"],
                            metrics["accuracy"], "n/a (one class)" if metrics["roc_auc"] is None
                            else f"{metrics['roc_auc']:.4f}")
        if config.bootstrap:
            scores.update(bootstrap_intervals(test.labels, test.raw_probs, raw_threshold, resamples=config.bootstrap,
                                              seed=config.seed, videos=test.videos if is_video else None))
        logger.info("Test: accuracy %.4f, balanced accuracy %.4f, ROC AUC %.4f, EER %.4f on %d images",
                    scores["accuracy"], scores["balanced_accuracy"], scores["roc_auc"], scores["eer"],
                    scores["n_test"])
        if config.bootstrap:
            logger.info("95 %% bootstrap intervals (%d resamples%s): accuracy %.4f-%.4f, ROC AUC %.4f-%.4f",
                        config.bootstrap, ", by video" if is_video else "", scores["accuracy_ci_low"],
                        scores["accuracy_ci_high"], scores["roc_auc_ci_low"], scores["roc_auc_ci_high"])
        if is_video and not missing_videos:
            scores["video"] = self._video_scores(val, test)

        self._write_predictions([val, test], raw_threshold)
        plot_files = write_plots(config.plots_dir, test.labels, test.probs, threshold,
                                 config.calibration_bins, self._threshold_label())
        reliability = [config.plots_dir / name for name in RELIABILITY_FILES]
        write_reliability_diagram(test.labels, test.raw_probs, test.probs, config.calibration_bins, *reliability)
        plot_files.update({path.name: path for path in reliability})
        write_json_atomic(config.scores_file, {**scores, "model_sha256": model_sha256})
        logger.info("Wrote %s, %s and plots in %s", config.scores_file, config.predictions_file,
                    config.plots_dir)
        if not learning.is_above_chance:
            logger.warning("evaluate: %s", learning.warning())  # again, last: the test numbers above mean little
        return EvaluationResult(scores=scores, model_sha256=model_sha256, scores_file=config.scores_file,
                                predictions_file=config.predictions_file, plot_files=plot_files,
                                threshold=threshold)

    def _video_scores(self, val: SplitPredictions, test: SplitPredictions) -> dict[str, Any]:
        """scores.json's `video` block, from the calibrated frame P(fake): what serving aggregates."""
        config = self.config
        video = evaluate_videos(SplitVideos.of(val.videos, val.labels, val.probs),
                                SplitVideos.of(test.videos, test.labels, test.probs), threshold=config.threshold,
                                threshold_rule=self._threshold_rule(), n_bins=config.calibration_bins,
                                resamples=config.bootstrap, seed=config.seed)
        logger.info("Video aggregation %s chosen on %d val videos (val ROC AUC %s); video threshold %.4f (%s)",
                    video["aggregation"], video["n_val_videos"],
                    ", ".join(f"{rule} {auc:.4f}" for rule, auc in video["aggregation_val_roc_auc"].items()),
                    video["threshold"], self._threshold_label())
        interval = (f" (95 % interval {video['roc_auc_ci_low']:.4f}-{video['roc_auc_ci_high']:.4f})"
                    if "roc_auc_ci_low" in video else "")
        logger.info("Test on %d videos (median %g frames each): accuracy %.4f, balanced accuracy %.4f, ROC AUC "
                    "%.4f%s, EER %.4f", video["n_test_videos"], video["frames_per_video"], video["accuracy"],
                    video["balanced_accuracy"], video["roc_auc"], interval, video["eer"])
        return video

    def _raw_threshold(self, val: SplitPredictions, temperature: float) -> float:
        """The decision threshold on the model's own output: chosen there for eer/youden; a number
        in params.yaml is a calibrated P(fake), which is what users see, so it is mapped back."""
        if isinstance(self.config.threshold, str):
            return choose_threshold(val.labels, val.raw_probs, self.config.threshold)
        return calibrate_threshold(float(self.config.threshold), 1.0 / temperature)

    def _fit_temperature(self, val: SplitPredictions) -> TemperatureFit:
        """Temperature scaling on val (1.0 when calibration is off): one parameter, so the ranking,
        the AUC and every decision stay as they were; only the probabilities become honest."""
        if not self.config.calibrate:
            logger.info("Calibration off (evaluate.calibrate): temperature 1.0")
            return TemperatureFit(1.0, CALIBRATION_OFF)
        fit = fit_temperature(val.labels, val.raw_probs)
        logger.info("Calibration: temperature %.3f in use (%s, from %d val images)", fit.temperature, fit.status,
                    val.labels.size)
        return fit

    def _check_split(self, manifest: pd.DataFrame, split: str) -> None:
        """Fail before any prediction if a split cannot be scored: both classes are needed for an
        ROC curve, a val threshold, and a test score that means anything."""
        counts = manifest.loc[manifest["split"] == split, "label"].value_counts()
        missing = [CLASS_NAMES[label] for label in (REAL, FAKE) if counts.get(label, 0) == 0]
        if missing:
            raise DataValidationError(
                f"{self.config.manifest_file}: the {split} split has no {' and no '.join(missing)} images "
                f"({int(counts.get(FAKE, 0))} fake, {int(counts.get(REAL, 0))} real); evaluation needs "
                "both classes in val and test, so add images or change data.split in params.yaml")

    def _predict(self, model, manifest: pd.DataFrame, split: str) -> SplitPredictions:
        config = self.config
        paths, labels = split_rows(manifest, split, config.dataset_dir)
        dataset = build_dataset(paths, labels, config.image_size, config.batch_size, fit=config.input_fit)
        logger.info("Predicting %d %s images", len(paths), split)
        probs = np.asarray(model.predict(dataset, verbose="auto"), dtype=np.float64).reshape(-1)
        if probs.size != len(paths):
            raise ModelError(f"{config.model_file}: {probs.size} predictions for {len(paths)} {split} images")
        if not np.isfinite(probs).all() or (probs < 0).any() or (probs > 1).any():
            raise ModelError(f"{config.model_file}: outputs must be probabilities P(fake) in [0, 1] "
                             f"(a sigmoid output); got {probs.min():g} to {probs.max():g} on {split}")
        rows = manifest[manifest["split"] == split]
        return SplitPredictions(rows=rows, labels=np.asarray(labels, dtype=np.int64), raw_probs=probs,
                                probs=probs)

    def _write_predictions(self, splits: list[SplitPredictions], raw_threshold: float) -> None:
        """Per image of val and test; with the manifest's video column last when it has one."""
        has_video_column = VIDEO_COLUMN in splits[0].rows.columns
        frames = [
            pd.DataFrame({
                "path": split.rows["path"].to_numpy(),
                "label": split.labels,
                "split": split.rows["split"].to_numpy(),
                "p_fake": split.probs,
                "p_fake_uncalibrated": split.raw_probs,
                "predicted": predict_labels(split.raw_probs, raw_threshold),
                **({VIDEO_COLUMN: split.videos} if has_video_column else {}),
            })
            for split in splits
        ]
        columns = [*PREDICTION_COLUMNS, *([VIDEO_COLUMN] if has_video_column else [])]
        table = pd.concat(frames, ignore_index=True)[columns]
        with atomic_path(self.config.predictions_file) as tmp:
            table.to_csv(tmp, index=False)

    def _threshold_rule(self) -> str:
        strategy = self.config.threshold
        return strategy if isinstance(strategy, str) else GIVEN_THRESHOLD

    def _threshold_label(self) -> str:
        strategy = self.config.threshold
        return THRESHOLD_LABELS[strategy] if isinstance(strategy, str) else "fixed in params.yaml"


def per_source_scores(test: SplitPredictions, raw_threshold: float) -> dict[str, dict[str, Any]]:
    """{source: {n, n_fake, n_real, roc_auc, accuracy, eer, average_precision}} on the test split, at
    the one threshold chosen on val: whether the model works on each data.source entry, not only on
    their mix. Ranking metrics are None for a source whose test images are all of one class."""
    results = {}
    for source in sorted(test.rows[SOURCE_COLUMN].unique()):
        chosen = (test.rows[SOURCE_COLUMN] == source).to_numpy()
        labels, probs = test.labels[chosen], test.raw_probs[chosen]
        has_both = np.unique(labels).size == 2
        results[str(source)] = {
            "n": int(labels.size), "n_fake": int((labels == FAKE).sum()), "n_real": int((labels == REAL).sum()),
            "roc_auc": float(roc_auc_score(labels, probs)) if has_both else None,
            "accuracy": float((predict_labels(probs, raw_threshold) == labels).mean()),
            "eer": equal_error_rate(labels, probs)[0] if has_both else None,
            "average_precision": float(average_precision_score(labels, probs, pos_label=FAKE)) if has_both else None,
        }
    return results
