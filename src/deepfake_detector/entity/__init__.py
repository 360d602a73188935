"""Config entities: what each component receives."""
from deepfake_detector.entity.config_entity import (
    AugmentationConfig,
    CrossDatasetConfig,
    DataIngestionConfig,
    DataValidationConfig,
    DemoDataConfig,
    EvaluationConfig,
    ExportConfig,
    ExtraSetConfig,
    ModelConfig,
    ReportConfig,
    RobustnessConfig,
    ServingConfig,
    ShortcutAuditConfig,
    SplitFractions,
    TrackingConfig,
    TrainingConfig,
)

__all__ = [
    "AugmentationConfig", "CrossDatasetConfig", "DataIngestionConfig", "DataValidationConfig", "DemoDataConfig",
    "EvaluationConfig", "ExportConfig", "ExtraSetConfig", "ModelConfig", "ReportConfig", "RobustnessConfig",
    "ServingConfig", "ShortcutAuditConfig", "SplitFractions", "TrackingConfig", "TrainingConfig",
]
