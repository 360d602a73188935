"""config/config.yaml as typed models: where every artifact lives, one model per section.

Paths are relative to the repository root (the ConfigurationManager resolves them). dvc.yaml reads
the same file through `vars:`, so each path is written once. An entity subclasses its stage's
section here, so a path added to a section reaches the stage without further wiring.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic.dataclasses import dataclass

from deepfake_detector.config.fields import MODEL_CONFIG, Text


@dataclass(frozen=True, kw_only=True, config=MODEL_CONFIG)
class DataIngestionPaths:
    root_dir: Path
    dataset_dir: Annotated[Path, Field(description="the raw dataset tree, as delivered")]
    index_file: Annotated[Path, Field(description="every image or video found: path,class_name,split")]
    report_file: Annotated[Path, Field(description="source, layout, counts")]


@dataclass(frozen=True, kw_only=True, config=MODEL_CONFIG)
class FramesPaths:
    root_dir: Path
    dataset_dir: Annotated[Path, Field(description="the image tree the pipeline learns from: every still image "
                                                   "(linked, not copied) and the sampled frames of every video")]
    index_file: Annotated[Path, Field(description="path,class_name,split,video,time_s,problem")]
    report_file: Annotated[Path, Field(description="videos, frames per class, every video left out and why")]


@dataclass(frozen=True, kw_only=True, config=MODEL_CONFIG)
class DataValidationPaths:
    root_dir: Path
    manifest_file: Annotated[Path, Field(description="path,label,split,sha256,group")]
    quarantine_file: Path
    split_summary_file: Path


@dataclass(frozen=True, kw_only=True, config=MODEL_CONFIG)
class FacesPaths:
    root_dir: Path
    crops_dir: Annotated[Path, Field(description="one lossless PNG per kept image: what the model is fed")]
    manifest_file: Annotated[Path, Field(description="the validated manifest over the crops (data.faces.enabled)")]
    report_file: Annotated[Path, Field(description="settings, detection rate, every image's face or reason")]


@dataclass(frozen=True, kw_only=True, config=MODEL_CONFIG)
class PrepareModelPaths:
    root_dir: Path
    model_file: Path
    summary_file: Path


@dataclass(frozen=True, kw_only=True, config=MODEL_CONFIG)
class TrainingPaths:
    root_dir: Path
    model_file: Path
    history_file: Path
    checkpoint_file: Path
    backup_dir: Path
    run_file: Path


@dataclass(frozen=True, kw_only=True, config=MODEL_CONFIG)
class EvaluationPaths:
    root_dir: Path
    scores_file: Path
    predictions_file: Path
    plots_dir: Path


@dataclass(frozen=True, kw_only=True, config=MODEL_CONFIG)
class RobustnessPaths:
    metrics_file: Annotated[Path, Field(description="AUC, accuracy, EER per perturbation and severity")]
    plot_file: Path
    png_file: Path


@dataclass(frozen=True, kw_only=True, config=MODEL_CONFIG)
class CrossDatasetPaths:
    root_dir: Annotated[Path, Field(description="each extra set, ingested")]
    results_file: Annotated[Path, Field(description="one row per extra set (DVC metrics)")]


@dataclass(frozen=True, kw_only=True, config=MODEL_CONFIG)
class ShortcutAuditPaths:
    results_file: Annotated[Path, Field(description="each cue's AUC alone (DVC metrics)")]


@dataclass(frozen=True, kw_only=True, config=MODEL_CONFIG)
class ReportPaths:
    html_file: Annotated[Path, Field(description="one static page: open it in a browser")]


@dataclass(frozen=True, kw_only=True, config=MODEL_CONFIG)
class ExportPaths:
    root_dir: Annotated[Path, Field(description="model.keras, *.tflite, model_card.json and .md")]
    metrics_file: Annotated[Path, Field(description="per-export size, parity and test metrics (DVC metrics)")]


@dataclass(frozen=True, kw_only=True, config=MODEL_CONFIG)
class ServingPaths:
    model_file: Annotated[Path, Field(description="DEEPFAKE_DETECTOR_MODEL overrides it")]
    export_dir: Annotated[Path, Field(description="DEEPFAKE_DETECTOR_EXPORT_DIR overrides it")]
    scores_file: Path


@dataclass(frozen=True, kw_only=True, config=MODEL_CONFIG)
class TrackingSettings:
    tracking_uri: Annotated[Text, Field(description="MLFLOW_TRACKING_URI overrides it")]
    experiment_name: Text
    registered_model_name: Text


@dataclass(frozen=True, kw_only=True, config=MODEL_CONFIG)
class ConfigFile:
    """config/config.yaml: every artifact's location, relative to the repository root."""

    logs_dir: Path
    data_ingestion: DataIngestionPaths
    frames: FramesPaths
    data_validation: DataValidationPaths
    faces: FacesPaths
    prepare_model: PrepareModelPaths
    training: TrainingPaths
    evaluation: EvaluationPaths
    robustness: RobustnessPaths
    cross_dataset: CrossDatasetPaths
    shortcut_audit: ShortcutAuditPaths
    report: ReportPaths
    export: ExportPaths
    serving: ServingPaths
    tracking: TrackingSettings
