"""Frozen, typed configuration handed to each component: a stage's paths plus its params section.

Each entity subclasses the models of config.yaml (paths.py) and params.yaml (params.py) it is made
of, so a key added to a section reaches its entities with no edit here; the fields declared below
are the ones a stage takes from elsewhere (another stage's output, model.image_size, a value the
ConfigurationManager resolves). Entities are plain dataclasses: building one validates nothing
(the manager validated the YAML), so code and tests can `dataclasses.replace` them freely.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepfake_detector.config.params import (
    AugmentParams,
    DataParams,
    DemoParams,
    EvaluateParams,
    ExportParams,
    ExtraSetParams,
    FacesParams,
    ModelParams,
    ServeParams,
    SplitParams,
    TrainParams,
    VideoParams,
)
from deepfake_detector.config.paths import (
    CrossDatasetPaths,
    DataIngestionPaths,
    DataValidationPaths,
    EvaluationPaths,
    ExportPaths,
    FacesPaths,
    FramesPaths,
    PrepareModelPaths,
    ReportPaths,
    RobustnessPaths,
    ServingPaths,
    ShortcutAuditPaths,
    TrackingSettings,
    TrainingPaths,
)

entity = dataclass(frozen=True, kw_only=True)


# ---- the nested params sections, as entities ---------------------------------------------------------

@dataclass(frozen=True)
class DemoDataConfig(DemoParams):
    """The built-in synthetic face dataset: deterministic from seed."""


@dataclass(frozen=True)
class SplitFractions(SplitParams):
    """The share of groups in train, val and test."""


@dataclass(frozen=True)
class AugmentationConfig(AugmentParams):
    """Training-time augmentation."""


@dataclass(frozen=True)
class ExtraSetConfig(ExtraSetParams):
    """A dataset from another source, scored with the trained model to measure generalization."""


@dataclass(frozen=True)
class FaceCropSettings(FacesParams):
    """How the faces stage finds and crops faces (data.faces), as serving does with the same settings."""


@dataclass(frozen=True)
class VideoSettings(VideoParams):
    """How the frames stage samples each video of the dataset (data.video)."""


# Section model -> its entity class: the manager hands components these, never the validating models.
NESTED_ENTITIES: Mapping[type, type] = {DemoParams: DemoDataConfig, SplitParams: SplitFractions,
                                        AugmentParams: AugmentationConfig, ExtraSetParams: ExtraSetConfig,
                                        FacesParams: FaceCropSettings, VideoParams: VideoSettings}


# ---- one entity per stage ------------------------------------------------------------------------------

@entity
class DataIngestionConfig(DataParams, DataIngestionPaths):
    """source resolved against the repository root; max_extracted_bytes from data.max_extracted_mb."""

    # How index.csv's source column names each data.source entry (a list only): as written in params.yaml,
    # URLs redacted, since the resolved paths differ between checkouts. Empty: named by the entries as held.
    source_names: tuple[str, ...] = ()


@entity
class FramesConfig(FramesPaths):
    """The frames stage: ingest's index with every video replaced by its sampled frames."""

    video: VideoSettings
    ingest_index_file: Path            # the ingest stage's index
    ingest_dataset_dir: Path           # where its paths point


@entity
class DataValidationConfig(DataParams, DataValidationPaths):
    dataset_dir: Path
    index_file: Path


@entity
class FacesConfig(FacesPaths):
    """The faces stage: a face crop (or a reason) for every image of the validated manifest."""

    faces: FaceCropSettings
    manifest_in: Path                  # the validate stage's manifest
    dataset_dir: Path                  # where its paths point
    quarantine_file: Path              # validate's quarantine (the faces report lists its own beside it)
    image_size: int
    input_fit: str                     # model.input_fit: the crop keeps what the model sees of the face


@entity
class ModelConfig(ModelParams, PrepareModelPaths):
    freeze_batch_norm: bool  # resolved from "auto": frozen only with pretrained weights


@entity
class TrainingConfig(TrainParams, TrainingPaths):
    base_model_file: Path
    manifest_file: Path
    dataset_dir: Path
    image_size: int
    input_fit: str                     # model.input_fit: crop or resize
    freeze_batch_norm: bool


@entity
class EvaluationConfig(EvaluateParams, EvaluationPaths):
    model_file: Path
    manifest_file: Path
    dataset_dir: Path
    split_summary_file: Path
    training_run_file: Path
    image_size: int
    input_fit: str                     # model.input_fit: crop or resize


@entity
class RobustnessConfig(EvaluateParams, RobustnessPaths):
    """Re-scoring the test split under each perturbation (what sharing sites do to images)."""

    model_file: Path
    manifest_file: Path
    dataset_dir: Path
    scores_file: Path                  # the evaluate stage's threshold and temperature
    training_run_file: Path
    image_size: int
    input_fit: str                     # model.input_fit: crop or resize


@entity
class CrossDatasetConfig(EvaluateParams, CrossDatasetPaths):
    """Scoring the trained model on datasets from other sources, at the validation-chosen threshold."""

    model_file: Path
    scores_file: Path
    training_run_file: Path
    ingestion: DataIngestionConfig     # how sources are fetched; each set gets its own folders
    min_image_size: int
    image_size: int
    input_fit: str                     # model.input_fit: crop or resize
    # data.faces: with enabled, each set is scored on face crops, as the model trained
    faces: FaceCropSettings = FaceCropSettings()


@entity
class ShortcutAuditConfig(EvaluateParams, ShortcutAuditPaths):
    """Probing accidental cues (file size, JPEG history, framing...) one by one on the train split."""

    model_file: Path                   # scores heavily down-scaled thumbnails, when present
    manifest_file: Path
    dataset_dir: Path
    training_run_file: Path
    image_size: int
    input_fit: str                     # model.input_fit: crop or resize


@entity
class ReportConfig(ReportPaths):
    """The single static HTML page that shows the model: every evaluation output in one file."""

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


@entity
class ExportConfig(ExportParams, ExportPaths):
    model_file: Path                   # the trained Keras model (.h5)
    manifest_file: Path
    dataset_dir: Path
    scores_file: Path                  # the evaluate stage's test scores and threshold
    training_run_file: Path
    project_root: Path                 # where to ask git for the commit
    image_size: int
    input_fit: str                     # model.input_fit: crop or resize
    batch_size: int
    seed: int                          # train.seed: the calibration images are drawn with it
    params: Mapping[str, Any]          # params.yaml as read, recorded in the model card


@entity
class ServingConfig(ServeParams, ServingPaths):
    """max_request_bytes comes from serve.max_request_mb."""

    input_fit: str = "crop"  # model.input_fit: used when no model card says how the served model was trained
    # data.faces when enabled (else None): what serve.face_detector auto follows when no model card says
    training_faces: FaceCropSettings | None = None


@entity
class TrackingConfig(TrackingSettings):
    """Where MLflow records runs, and the name the trained model is registered under."""
