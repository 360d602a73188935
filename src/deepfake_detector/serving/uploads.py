"""Uploaded bytes to upright RGB pixels, in memory: size caps first, then the training decoder,
then the EXIF orientation a phone camera recorded (training ignored it; a served photo should not)."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from deepfake_detector.exceptions import ImageError
from deepfake_detector.inference.images import SUPPORTED_FORMATS, UPLOAD_NAME, decode_image

EXIF_ORIENTATION_TAG = 0x0112
# What PIL.ImageOps.exif_transpose does for each EXIF orientation.
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class ImageTooLargeError(ImageError):
    """The upload is bigger, in bytes or declared pixels, than the server decodes."""


def decode_upload(data: bytes, name: str, *, max_bytes: int, max_pixels: int) -> np.ndarray:
    """uint8 (H, W, 3) RGB, upright. Raises ImageError (ImageTooLargeError for caps) naming the upload.

    The header is read first, so a decompression bomb is refused before any pixel is allocated.
    """
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"{name}: {len(data):,} bytes is too large (at most {max_bytes:,})")
    orientation = _check_header(data, name, max_pixels)
    try:
        pixels = decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    except ImageError as error:
        raise type(error)(_rename(str(error), name)) from None
    method = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
    if method is None:
        return pixels
    return np.asarray(Image.fromarray(pixels).transpose(method))


def _check_header(data: bytes, name: str, max_pixels: int) -> int:
    """The EXIF orientation (1 = upright) after checking the declared size against max_pixels."""
    if not data:
        raise ImageError(f"{name}: empty file, not an image")
    try:
        with Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLargeError(f"{name}: {width}x{height} pixels is too large "
                                         f"(at most {max_pixels:,} pixels are decoded)")
            return _orientation(image)
    except Image.DecompressionBombError as error:
        raise ImageTooLargeError(f"{name}: too large: {error}") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image in a supported format ({', '.join(SUPPORTED_FORMATS)})") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError) as error:
        raise ImageError(f"{name}: truncated or corrupt image: {error}") from None


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block is common in the wild; the pixels may still be fine
        return 1
    return value if isinstance(value, int) else 1


def _rename(message: str, name: str) -> str:
    """The shared decoder names byte uploads generically; say which upload it was."""
    prefix = f"{UPLOAD_NAME}:"
    return f"{name}:{message[len(prefix):]}" if message.startswith(prefix) else message
