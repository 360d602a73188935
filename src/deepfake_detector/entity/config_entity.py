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
