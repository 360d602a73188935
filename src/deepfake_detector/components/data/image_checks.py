"""Decode one image file in full and report what the validate stage needs: its SHA-256, its
perceptual hash, and the reason it cannot be used, if any."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image, UnidentifiedImageError

from deepfake_detector.utils.files import sha256_bytes

# What tf.io.decode_image, the training and evaluation decoder, can read (MPO is the JPEG
# variant many cameras write). Pillow reads more (TIFF, ICO, PPM...), but such a file would
# pass here and then crash training mid-epoch.
TRAINING_FORMATS = ("JPEG", "MPO", "PNG", "GIF", "BMP", "WEBP")

# Files Pillow reads but tf.io.decode_image does not read faithfully: it raises for 1-bit BMPs and
# RGBA WebPs when asked for 3 channels, and reads a palette BMP's indices as gray levels.
TRAINING_DECODER_GAPS = {("BMP", "1"): "1-bit BMP", ("BMP", "P"): "palette BMP", ("WEBP", "RGBA"): "WebP with alpha"}

# 16-bit grayscale (a PNG with 16-bit depth): Pillow's own conversion to 8 bits clips every
# value above 255 to white, so it is rescaled here instead (for the perceptual hash only; the
# training decoder keeps the high byte).
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
# 32-bit integer and float pixels have no defined range, so no faithful 8-bit RGB exists.
UNSUPPORTED_MODES = ("I", "F")


class UnsupportedModeError(ValueError):
    """The image decodes but its pixels have no faithful 8-bit RGB form."""


@dataclass(frozen=True)
class ImageCheck:
    """The outcome for one file. problem is None exactly when the image is usable; the hashes
    are None when the file could not be read (sha256) or decoded (phash)."""

    sha256: str | None
    phash: int | None
    problem: str | None

    @property
    def is_usable(self) -> bool:
        return self.problem is None


def inspect_image(path: Path, min_size: int) -> ImageCheck:
    """Read, fully decode and hash one file; never raises for a bad file, reports it instead.

    Decoding is complete (load()), so a truncated file is caught here rather than in training;
    Pillow's LOAD_TRUNCATED_IMAGES is left at its default (off) for the same reason.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return ImageCheck(None, None, "missing file")
    except IsADirectoryError:
        return ImageCheck(None, None, "not a file: a directory")
    except OSError as error:
        return ImageCheck(None, None, f"unreadable file: {error.strerror or error}")
    sha256 = sha256_bytes(data)
    if not data:
        return ImageCheck(sha256, None, "empty file")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.format not in TRAINING_FORMATS:
                return ImageCheck(sha256, None, f"unsupported format: {image.format} "
                                                f"(training reads {', '.join(TRAINING_FORMATS)})")
            gap = TRAINING_DECODER_GAPS.get((image.format, image.mode))
            if gap:
                return ImageCheck(sha256, None, f"unsupported by the training decoder: {gap} (TensorFlow cannot "
                                                "decode it faithfully; convert it to PNG or JPEG)")
            width, height = image.size
            if width < min_size or height < min_size:
                return ImageCheck(sha256, None, f"too small: {width}x{height} "
                                                f"(data.min_image_size is {min_size} on each side)")
            return ImageCheck(sha256, phash_int(to_rgb(image)), None)
    except UnidentifiedImageError:
        return ImageCheck(sha256, None, "not an image: no known image format")
    except Image.DecompressionBombError as error:
        return ImageCheck(sha256, None, f"too large: {error}")
    except UnsupportedModeError as error:
        return ImageCheck(sha256, None, str(error))
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        return ImageCheck(sha256, None, f"truncated or corrupt image: {error}")


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB: alpha dropped, palettes, grayscale, CMYK and YCbCr converted, 16-bit
    grayscale rescaled; 32-bit integer or float pixels refused."""
    if image.mode in SIXTEEN_BIT_MODES:
        wide = np.asarray(image, dtype=np.uint32)
        return Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8), "L").convert("RGB")
    if image.mode in UNSUPPORTED_MODES:
        raise UnsupportedModeError(f"unsupported pixel mode: {image.mode} (no faithful 8-bit RGB form)")
    if image.mode == "RGB":
        return image
    return image.convert("RGB")


def phash_int(image: Image.Image) -> int:
    """The 64-bit DCT perceptual hash (imagehash.phash) as an unsigned integer."""
    bits = imagehash.phash(image).hash.flatten()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")
