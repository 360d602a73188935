"""Full-scale JPEG decodes straight into an RGB numpy array, with the libjpeg-turbo that simplejpeg bundles.

Pillow keeps an RGB image at 4 bytes a pixel and decodes through its own buffers, so a 40-megapixel photo costs
about 160 MB before a single pixel is copied out; TurboJPEG writes 3 bytes a pixel into the array itself
(120 MB), and a 300x300 JPEG decodes in about half Pillow's time. The pixels are the same: both run
libjpeg-turbo's accurate integer IDCT with fancy chroma upsampling (tests/unit/test_jpeg_decode_parity.py).

Only what the two decode alike comes here: YCbCr/RGB and grayscale JPEGs at full scale. A CMYK JPEG, and one
that libjpeg only warns about (extraneous bytes, a premature end), go back to Pillow, whose behaviour on those
(decode, or refuse as truncated) stays the one every caller knows.
"""
from __future__ import annotations

import numpy as np
import simplejpeg

# Pillow modes of JPEGs whose colour conversion to RGB TurboJPEG does as Pillow and TensorFlow do.
DECODED_MODES = ("RGB", "L")


def decode_rgb(data: bytes, mode: str, size: tuple[int, int]) -> np.ndarray | None:
    """uint8 (H, W, 3) RGB of a JPEG that Pillow opened in `mode` at `size` (width, height), or None when
    Pillow must decode it."""
    if mode not in DECODED_MODES:
        return None
    try:
        pixels = simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=False, fastupsample=False, strict=True)
    except ValueError:  # corrupt, truncated, or a warning libjpeg would let pass: Pillow decides
        return None
    # A multi-picture file (MPO) decodes its first picture, Pillow's first frame; any other size is not that.
    return pixels if pixels.shape[:2] == (size[1], size[0]) else None
