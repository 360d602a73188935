"""Frozen, typed configuration handed to each component. No logic beyond validation."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal


@dataclass(frozen=True)
class DemoDataConfig:
    """The built-in synthetic face dataset: deterministic from seed."""

    seed: int
    images_per_class: int
    image_size: int
    fingerprint_strength: float
    sensor_noise: float
    jpeg_quality_min: int
    jpeg_quality_max: int
    style: str = "a"  # a: checkerboard fingerprint, studio scenes; b: another fingerprint family and scenes


@dataclass(frozen=True)
class DataIngestionConfig:
    root_dir: Path
    dataset_dir: Path
    index_file: Path
    report_file: Path
    source: str
    sha256: str | None
    class_names: Mapping[str, tuple[str, ...]]  # "fake"/"real" -> folder or CSV label names
    max_archive_members: int
    max_extracted_bytes: int
    download_timeout_s: float
    demo: DemoDataConfig


@dataclass(frozen=True)
class SplitFractions:
    train: float
    val: float
    test: float


@dataclass(frozen=True)
class DataValidationConfig:
    root_dir: Path
    dataset_dir: Path
    index_file: Path
    manifest_file: Path
    quarantine_file: Path
    split_summary_file: Path
    class_names: Mapping[str, tuple[str, ...]]
    min_image_size: int
    max_bad_fraction: float
    near_duplicate_hamming: int
    split: SplitFractions
    seed: int


@dataclass(frozen=True)
class ModelConfig:
    root_dir: Path
    model_file: Path
    summary_file: Path
    alpha: float
    image_size: int
    weights: str  # "imagenet", "none" or a path to MobileNetV2 no-top (backbone) weights
    dropout: float
    batch_norm_momentum: float
    freeze_batch_norm: bool  # resolved from "auto": frozen only with pretrained weights
    seed: int


@dataclass(frozen=True)
class AugmentationConfig:
    enabled: bool
    flip: bool
    rotation: float
    zoom: float
    contrast: float
    brightness: float
    jpeg_probability: float
    jpeg_quality_min: int
    jpeg_quality_max: int
    blur_probability: float
    rescale_probability: float
    rescale_min_factor: float


@dataclass(frozen=True)
class TrainingConfig:
    root_dir: Path
    base_model_file: Path
    manifest_file: Path
    dataset_dir: Path
    model_file: Path
    history_file: Path
    checkpoint_file: Path
    backup_dir: Path
    run_file: Path
    image_size: int
    batch_size: int
    head_epochs: int
    head_learning_rate: float
    fine_tune_epochs: int
    fine_tune_layers: int | Literal["all"]
    fine_tune_learning_rate: float
    freeze_batch_norm: bool
    early_stopping_patience: int
    reduce_lr_patience: int
    reduce_lr_factor: float
    class_weights: bool
    cache: bool
    seed: int
    augment: AugmentationConfig
    # Scale-out: the tf.distribute strategy, how the learning rate follows the global batch, and
    # float16 compute on GPUs that support it.
    strategy: Literal["auto", "mirrored", "multi_worker", "one_device"] = "auto"
    learning_rate_scaling: Literal["linear", "none"] = "linear"
    mixed_precision: Literal["auto", "on", "off"] = "auto"


@dataclass(frozen=True)
class ExtraSetConfig:
    """A dataset from another source, scored with the trained model to measure generalisation."""

    name: str
    source: str      # anything data.source accepts, or demo:<style>


@dataclass(frozen=True)
class EvaluationConfig:
    root_dir: Path
    model_file: Path
    manifest_file: Path
    dataset_dir: Path
    scores_file: Path
    predictions_file: Path
    plots_dir: Path
    split_summary_file: Path
    training_run_file: Path
    image_size: int
    batch_size: int
    threshold: float | Literal["eer", "youden"]
    calibration_bins: int
    bootstrap: int = 0                 # stratified resamples for the 95 % intervals; 0 = none
    calibrate: bool = False            # fit a temperature on val and report calibrated P(fake)
    seed: int = 0


@dataclass(frozen=True)
class RobustnessConfig:
    """Re-scoring the test split under each perturbation (what sharing sites do to images)."""

    model_file: Path
    manifest_file: Path
    dataset_dir: Path
    scores_file: Path                  # the evaluate stage's threshold and temperature
    metrics_file: Path
    plot_file: Path
    png_file: Path
    training_run_file: Path
    image_size: int
    batch_size: int
    severities: Mapping[str, tuple[float, ...]]  # perturbation name -> severities, mild to harsh
    seed: int


@dataclass(frozen=True)
class CrossDatasetConfig:
    """Scoring the trained model on datasets from other sources, at the validation-chosen threshold."""

    root_dir: Path                     # where each extra set is ingested
    results_file: Path
    model_file: Path
    scores_file: Path
    training_run_file: Path
    ingestion: DataIngestionConfig     # how sources are fetched; each set gets its own folders
    min_image_size: int
    image_size: int
    batch_size: int
    extra_sets: tuple[ExtraSetConfig, ...]


@dataclass(frozen=True)
class ShortcutAuditConfig:
    """Probing accidental cues (file size, JPEG history, framing...) one by one on the train split."""

    results_file: Path
    model_file: Path                   # scores heavily down-scaled thumbnails, when present
    manifest_file: Path
    dataset_dir: Path
    training_run_file: Path
    image_size: int
    batch_size: int
    warn_auc: float
    seed: int


@dataclass(frozen=True)
class ReportConfig:
    """The single static HTML page that shows the model: every evaluation output in one file."""

    html_file: Path
    scores_file: Path
    predictions_file: Path
    plots_dir: Path
    dataset_dir: Path
    robustness_metrics_file: Path
    robustness_png_file: Path
    cross_dataset_file: Path
    shortcut_audit_file: Path
    training_run_file: Path
    params: Mapping[str, Any]


@dataclass(frozen=True)
class ExportConfig:
    root_dir: Path                     # the export folder: model files and the model card
    metrics_file: Path
    model_file: Path                   # the trained Keras model (.h5)
    manifest_file: Path
    dataset_dir: Path
    scores_file: Path                  # the evaluate stage's test scores and threshold
    training_run_file: Path
    project_root: Path                 # where to ask git for the commit
    image_size: int
    batch_size: int
    variants: tuple[str, ...]
    calibration_images: int
    max_float32_diff: float
    max_auc_drop: float
    seed: int
    params: Mapping[str, Any]          # params.yaml as read, recorded in the model card


@dataclass(frozen=True)
class ServingConfig:
    model_file: Path                   # the trained Keras model (.h5)
    export_dir: Path                   # model_card.json and the .tflite exports
    scores_file: Path                  # test metrics shown by /api/v1/model
    backend: Literal["auto", "tflite", "keras"]
    variant: str
    num_threads: int | None
    threshold: float | None            # None: the model card's (evaluate stage's) threshold
    face_detector: Literal["off", "haar"]
    face_policy: Literal["largest", "all"]
    face_min_size: int
    face_margin: float
    max_request_bytes: int
    max_image_pixels: int
    max_images_per_request: int
    cors_origins: tuple[str, ...]
    training_enabled: bool


@dataclass(frozen=True)
class TrackingConfig:
    tracking_uri: str
    experiment_name: str
    registered_model_name: str
