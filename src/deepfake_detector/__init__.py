"""deepfake-detector: a reproducible pipeline that trains, evaluates and serves a deepfake-face detector."""

__version__ = "0.1.0"
