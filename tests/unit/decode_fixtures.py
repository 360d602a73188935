"""Shared by the decode and fit parity tests: the training decoder applied to encoded bytes, and how
close the two resize implementations are."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

# TensorFlow's antialiased resize and Pillow's float BILINEAR filter compute the same weights; what
# is left is float32 rounding, measured at most 0.004 gray levels. Decoding itself is bit-exact.
RESIZE_TOLERANCE = 0.01


def training_decode(data: bytes) -> np.ndarray:
    """uint8 pixels of the training decoder (datasets.decode_native, which reads files) for encoded bytes."""
    from deepfake_detector.components.data.datasets import decode_native

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "image"
        path.write_bytes(data)
        return decode_native(str(path)).numpy().astype(np.uint8)


def training_fit(data: bytes, image_size: int, fit: str) -> np.ndarray:
    """float32 model input of the training pipeline (datasets.decode_and_fit) for encoded bytes."""
    from deepfake_detector.components.data.datasets import decode_and_fit

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "image"
        path.write_bytes(data)
        return decode_and_fit(str(path), image_size, fit).numpy()
