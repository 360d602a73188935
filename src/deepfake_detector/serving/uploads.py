"""Uploaded bytes to upright RGB pixels, in memory: the training decoder with the server's caps, plus
the EXIF orientation a phone camera recorded (training ignored it; a served photo should not)."""
from __future__ import annotations

import warnings

import numpy as np
from PIL import Image

from deepfake_detector.contracts.errors import ImageTooLargeError
from deepfake_detector.inference.images import decode_image

__all__ = ["ImageTooLargeError", "decode_upload", "limit_pillow_pixels"]


def decode_upload(data: bytes, name: str, *, max_bytes: int, max_pixels: int) -> np.ndarray:
    """uint8 (H, W, 3) RGB, upright. Raises ImageError (ImageTooLargeError for caps) naming the upload.

    The header is read first, so a decompression bomb is refused before any pixel is allocated.
    """
    return decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels, name=name, upright=True)


def limit_pillow_pixels(max_pixels: int) -> None:
    """Make Pillow's own decompression-bomb guard refuse what the server's pixel cap refuses; process-wide.

    Some of Pillow's openers allocate while opening: the WebP one reserves the whole canvas its header declares
    (1.28 GB for a 140-byte file under Pillow's default cap) before decode_image can read the size. Pillow raises
    for a declared size over twice Image.MAX_IMAGE_PIXELS, before that allocation, and only warns above it; so
    its cap is half the server's (rounded up: an odd cap lets Pillow open one pixel more, which decode_image still
    refuses), and the warning, about images decode_image refuses anyway, is silenced.
    """
    Image.MAX_IMAGE_PIXELS = (max_pixels + 1) // 2
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
