"""The export stage's worker: writes the deployable model files, proves each one faithful to the
trained Keras model, and writes the model card.

Every export is scored through the same runtime the server uses (`deepfake_detector.inference`),
so the numbers in export_metrics.json are the numbers a deployment gets. The ROC AUC gate decides
on the validation split (`val_auc_drop`), like every other choice the pipeline makes; the test
split's numbers per variant (`roc_auc`, `auc_drop`, ...) are reported, never used to decide. A model
that did not learn (the evaluate stage's verdict) cannot have a variant blamed for losing AUC: the
gate says so instead. Everything is built in a staging folder and swapped in whole: a failed
conversion or gate leaves the previous export intact.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepfake_detector.components.data.datasets import build_dataset, read_manifest, split_rows
from deepfake_detector.components.evaluation.learning import SCORE_KEYS as LEARNING_KEYS
from deepfake_detector.components.evaluation.learning import LearningCheck, read_learning_check
from deepfake_detector.components.evaluation.metrics import compute_scores
from deepfake_detector.components.export.converters import (
    QUANTIZED_VARIANTS,
    VARIANT_DESCRIPTIONS,
    write_variant,
)
from deepfake_detector.components.export.model_card import RULE_ORIGIN_KEYS, build_model_card, render_markdown
from deepfake_detector.config.entities import ExportConfig
from deepfake_detector.config.params import source_label
from deepfake_detector.contracts.errors import DataValidationError, ExportError, ModelError
from deepfake_detector.contracts.export_layout import MODEL_CARD_NAME, VARIANT_FILES
from deepfake_detector.contracts.scores import Scores, read_scores
from deepfake_detector.inference.keras_model import load_keras_model
from deepfake_detector.utils.files import atomic_directory, sha256_file, write_json_atomic, write_text_atomic
from deepfake_detector.utils.provenance import git_commit

logger = logging.getLogger(__name__)

MODEL_CARD_MARKDOWN = "model_card.md"
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class ExportResult:
    export_dir: Path
    metrics_file: Path
    model_card_file: Path
    model_card_markdown: Path
    metrics: dict[str, dict[str, Any]]   # variant -> size, parity and test metrics
    files: dict[str, Path]               # variant -> exported file


@dataclass(frozen=True)
class SplitImages:
    images: np.ndarray                   # float32 (N, S, S, 3), exactly what the evaluator fed
    labels: np.ndarray


@dataclass(frozen=True)
class VariantScores:
    """One model's P(fake) on the split the gate decides on and on the split that is reported."""

    val: np.ndarray
    test: np.ndarray


class Exporter:
    """Builds the export variants params ask for, measures them against Keras, gates and records."""

    def __init__(self, config: ExportConfig) -> None:
        self.config = config

    def run(self) -> ExportResult:
        config = self.config
        model = load_keras_model(config.model_file, config.image_size)
        scores = self._read_scores()
        learning = read_learning_check(scores.metrics)
        if learning is not None and not learning.is_above_chance:
            logger.warning("export: %s", learning.warning())
        # Exports are compared on the model's raw output, so they are judged at the raw-output
        # threshold; the card records the calibrated one that serving applies after the temperature.
        threshold = scores.rule.raw_threshold
        manifest = read_manifest(config.manifest_file)
        val, test = self._split_images(manifest, "val"), self._split_images(manifest, "test")
        reference = VariantScores(val=_keras_probabilities(model, val.images, config.batch_size),
                                  test=_keras_probabilities(model, test.images, config.batch_size))
        reference_val = compute_scores(val.labels, reference.val, threshold, CALIBRATION_BINS)
        reference_test = compute_scores(test.labels, reference.test, threshold, CALIBRATION_BINS)
        logger.info("Keras reference: validation ROC AUC %.4f on %d images; test ROC AUC %.4f, accuracy %.4f on %d",
                    reference_val["roc_auc"], val.labels.size, reference_test["roc_auc"],
                    reference_test["accuracy"], test.labels.size)

        metrics: dict[str, dict[str, Any]] = {}
        with atomic_directory(config.root_dir) as staging:
            for variant in config.variants:
                path = write_variant(model, variant, staging / VARIANT_FILES[variant],
                                     calibration=lambda: self._calibration_images(manifest))
                probs = self._score_export(variant, path, val.images, test.images)
                metrics[variant] = {
                    **_variant_metrics(variant, path, probs.test, reference.test, reference_test, test.labels,
                                       threshold),
                    **_validation_metrics(probs.val, reference_val, val.labels, threshold)}
                logger.info("%-12s %7.2f MB  max |diff| %.2e  val ROC AUC drop %+.4f  test ROC AUC %.4f (drop %+.4f)"
                            "  accuracy %.4f", variant, metrics[variant]["bytes"] / 1e6,
                            metrics[variant]["max_abs_diff"], metrics[variant]["val_auc_drop"],
                            metrics[variant]["roc_auc"], metrics[variant]["auc_drop"], metrics[variant]["accuracy"])
            self._check_gates(metrics, learning)
            card = build_model_card(
                params=config.params, image_size=config.image_size, total_parameters=int(model.count_params()),
                rule=scores.rule, rule_origin=_rule_origin(scores), test_metrics=_card_test_metrics(scores),
                learning=learning, exports=metrics, source=self._source(),
                dataset=self._dataset_fingerprint(manifest), git=git_commit(config.project_root),
                video=scores.get("video"))
            write_json_atomic(staging / MODEL_CARD_NAME, card)
            write_text_atomic(staging / MODEL_CARD_MARKDOWN, render_markdown(card))
        write_json_atomic(config.metrics_file, metrics)
        logger.info("Wrote %s and %s", config.root_dir, config.metrics_file)
        return ExportResult(export_dir=config.root_dir, metrics_file=config.metrics_file,
                            model_card_file=config.root_dir / MODEL_CARD_NAME,
                            model_card_markdown=config.root_dir / MODEL_CARD_MARKDOWN, metrics=metrics,
                            files={v: config.root_dir / VARIANT_FILES[v] for v in config.variants})

    def _read_scores(self) -> Scores:
        """The evaluate stage's output: the threshold exports are judged at, and the card's metrics.

        Scores measured on another model.h5 (train rerun, evaluate not) would give the card another
        model's numbers, so they are refused.
        """
        path = self.config.scores_file
        try:
            return read_scores(path).require_model(self.config.model_file)
        except ModelError as error:
            raise ExportError(str(error)) from None

    def _split_images(self, manifest, split: str) -> SplitImages:
        paths, labels = split_rows(manifest, split, self.config.dataset_dir)
        if len(set(labels)) < 2:
            raise DataValidationError(f"{self.config.manifest_file}: the {split} split needs both classes to "
                                      "measure ROC AUC of the exports")
        dataset = build_dataset(paths, labels, self.config.image_size, self.config.batch_size,
                                fit=self.config.input_fit)
        images = np.concatenate([batch.numpy() for batch, _ in dataset]).astype(np.float32)
        return SplitImages(images=images, labels=np.asarray(labels, dtype=np.int64))

    def _calibration_images(self, manifest):
        """A seeded sample of train images, decoded exactly as in training, for int8 calibration."""
        from deepfake_detector.components.data.datasets import decode_and_fit

        paths, _ = split_rows(manifest, "train", self.config.dataset_dir)
        count = min(self.config.calibration_images, len(paths))
        chosen = np.random.default_rng(self.config.seed).choice(len(paths), size=count, replace=False)
        logger.info("Calibrating full-integer quantization on %d train images", count)
        for index in chosen:
            yield decode_and_fit(paths[index], self.config.image_size, self.config.input_fit).numpy()

    def _score_export(self, variant: str, path: Path, val_images: np.ndarray,
                      test_images: np.ndarray) -> VariantScores:
        """P(fake) for both splits through the runtime a deployment would use, one finite number per image."""
        from deepfake_detector.inference.keras_backend import KerasPredictor
        from deepfake_detector.inference.predictor import TFLitePredictor

        predictor = KerasPredictor(path) if variant == "keras" else TFLitePredictor(path, variant=variant)
        batch = self.config.batch_size
        try:
            val, test = (np.concatenate([predictor.predict(images[start:start + batch])
                                         for start in range(0, len(images), batch)]).astype(np.float64).reshape(-1)
                         for images in (val_images, test_images))
        except (RuntimeError, ValueError) as error:  # e.g. XNNPACK refusing a degenerate quantized graph
            raise ExportError(f"{path.name}: the {variant} export does not run: {error}") from error
        finally:
            predictor.close()
        for probs, images in ((val, val_images), (test, test_images)):
            if probs.size != len(images) or not np.isfinite(probs).all():
                raise ExportError(f"{path.name}: gave {probs.size} outputs (finite: {bool(np.isfinite(probs).all())})"
                                  f" for {len(images)} images")
        return VariantScores(val=val, test=test)

    def _check_gates(self, metrics: dict[str, dict[str, Any]], learning: LearningCheck | None) -> None:
        """float32 must reproduce Keras; a quantized variant may lose at most export.max_auc_drop validation
        ROC AUC. A model at chance has no ranking to lose: then a tripped AUC gate names the model."""
        config = self.config
        problems = []
        if "float32" in metrics and metrics["float32"]["max_abs_diff"] > config.max_float32_diff:
            problems.append(f"float32 differs from Keras by up to {metrics['float32']['max_abs_diff']:.2e} "
                            f"(export.max_float32_diff is {config.max_float32_diff:g})")
        losing = [variant for variant in QUANTIZED_VARIANTS
                  if variant in metrics and metrics[variant]["val_auc_drop"] > config.max_auc_drop]
        if losing and learning is not None and not learning.is_above_chance:
            drops = ", ".join(f"{variant} {metrics[variant]['val_auc_drop']:+.4f}" for variant in losing)
            raise ExportError(f"nothing exported: {learning.warning()} The validation ROC AUC changes of the "
                              f"quantized exports ({drops}) reorder scores that carry no signal; they say nothing "
                              "about the exports.")
        problems += [f"{variant} loses {metrics[variant]['val_auc_drop']:.4f} validation ROC AUC "
                     f"(export.max_auc_drop is {config.max_auc_drop:g})" for variant in losing]
        if problems:
            raise ExportError("exports not faithful to the trained model, nothing written: " + "; ".join(problems)
                              + ". Drop the variant from export.variants, raise the limit in params.yaml, or "
                              "(for int8_full) calibrate on more images (export.calibration_images).")

    def _source(self) -> dict[str, str]:
        path = self.config.model_file
        try:
            shown = path.relative_to(self.config.project_root)
        except ValueError:
            shown = path
        return {"file": str(shown), "sha256": sha256_file(path)}

    def _dataset_fingerprint(self, manifest) -> dict[str, Any]:
        return {
            "source": source_label(self.config.params.get("data", {}).get("source") or ""),
            "manifest_sha256": sha256_file(self.config.manifest_file),
            "images_per_split": {split: int(n) for split, n in manifest["split"].value_counts().sort_index().items()},
        }


# scores.json keys the card states elsewhere: the model in `source`, the rule's origin in `output`,
# the validation check in `validation`, the video rule and the video-level metrics in `video`.
NOT_TEST_METRICS = ("model_sha256", *RULE_ORIGIN_KEYS, *LEARNING_KEYS, "video")


def _card_test_metrics(scores: Scores) -> dict[str, Any]:
    """scores.json's test metrics and decision rule as the card lists them."""
    rule = scores.rule
    metrics = {key: value for key, value in scores.metrics.items() if key not in NOT_TEST_METRICS}
    return {**metrics, "threshold": rule.threshold, "temperature": rule.temperature,
            "threshold_uncalibrated": rule.raw_threshold}


def _rule_origin(scores: Scores) -> dict[str, Any]:
    """How the evaluate stage came to its threshold and temperature (None for older scores.json files)."""
    return {key: scores.get(key) for key in RULE_ORIGIN_KEYS}


def _keras_probabilities(model, images: np.ndarray, batch_size: int) -> np.ndarray:
    import tensorflow as tf

    size = model.input_shape[1]
    forward = tf.function(lambda x: model(x, training=False),
                          input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
    return np.concatenate([forward(images[start:start + batch_size]).numpy().reshape(-1)
                           for start in range(0, len(images), batch_size)]).astype(np.float64)


def _validation_metrics(probs: np.ndarray, reference_scores: dict[str, Any], labels: np.ndarray,
                        threshold: float) -> dict[str, Any]:
    """What the AUC gate decides on: the variant's validation ROC AUC and its loss against Keras."""
    scores = compute_scores(labels, np.clip(probs, 0.0, 1.0), threshold, CALIBRATION_BINS)
    return {"val_roc_auc": scores["roc_auc"], "val_auc_drop": reference_scores["roc_auc"] - scores["roc_auc"]}


def _variant_metrics(variant: str, path: Path, probs: np.ndarray, reference: np.ndarray,
                     reference_scores: dict[str, Any], labels: np.ndarray, threshold: float) -> dict[str, Any]:
    """Size, parity against Keras and the test split's scores: reported, not gated on (but max_abs_diff)."""
    scores = compute_scores(labels, np.clip(probs, 0.0, 1.0), threshold, CALIBRATION_BINS)
    same_call = (probs >= threshold) == (reference >= threshold)
    return {
        "file": path.name,
        "description": VARIANT_DESCRIPTIONS[variant],
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        "max_abs_diff": float(np.abs(probs - reference).max()),
        "mean_abs_diff": float(np.abs(probs - reference).mean()),
        "decision_agreement": float(same_call.mean()),
        "accuracy": scores["accuracy"],
        "roc_auc": scores["roc_auc"],
        "eer": scores["eer"],
        "auc_drop": reference_scores["roc_auc"] - scores["roc_auc"],
    }
