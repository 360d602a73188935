"""Configuration: YAML in, entities out."""
from deepfake_detector.config.configuration import ConfigurationManager

__all__ = ["ConfigurationManager"]
