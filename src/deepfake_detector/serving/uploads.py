"""Uploaded bytes to upright RGB pixels, in memory: the training decoder with the server's caps, plus
the EXIF orientation a phone camera recorded (training ignored it; a served photo should not)."""
from __future__ import annotations

import numpy as np

from deepfake_detector.contracts.errors import ImageTooLargeError
from deepfake_detector.inference.images import decode_image

__all__ = ["ImageTooLargeError", "decode_upload"]


def decode_upload(data: bytes, name: str, *, max_bytes: int, max_pixels: int) -> np.ndarray:
    """uint8 (H, W, 3) RGB, upright. Raises ImageError (ImageTooLargeError for caps) naming the upload.

    The header is read first, so a decompression bomb is refused before any pixel is allocated.
    """
    return decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels, name=name, upright=True)
