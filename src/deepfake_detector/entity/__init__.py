"""Config entities: what each component receives."""
from deepfake_detector.entity.config_entity import (
    AugmentationConfig,
    DataIngestionConfig,
    DataValidationConfig,
    DemoDataConfig,
    EvaluationConfig,
    ExportConfig,
    ModelConfig,
    ServingConfig,
    SplitFractions,
    TrackingConfig,
    TrainingConfig,
)

__all__ = [
    "AugmentationConfig", "DataIngestionConfig", "DataValidationConfig", "DemoDataConfig",
    "EvaluationConfig", "ExportConfig", "ModelConfig", "ServingConfig", "SplitFractions", "TrackingConfig",
    "TrainingConfig",
]
