"""Decode images and fit them to the model input exactly as training did, with numpy and Pillow only,
so a TensorFlow-free server feeds the model the pixels it was trained on.

JPEGs are decoded by libjpeg-turbo on both sides: here TurboJPEG (turbojpeg.py) at full scale and Pillow's
decoder at a reduced scale (accurate integer IDCT, fancy chroma upsampling), TensorFlow's
decode_jpeg(dct_method="INTEGER_ACCURATE") in training; they agree bit for bit, also when libjpeg decodes a
large JPEG at a reduced scale. Where TensorFlow's other conversions
differ from Pillow's, this module reproduces TensorFlow: 16-bit PNGs keep the high byte, transparent GIF
pixels are black, CMYK JPEGs use TensorFlow's integer conversion. EXIF orientation is ignored, as in
training, unless a caller asks for upright pixels (a served phone photo).
"""
from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from deepfake_detector.contracts.errors import ImageError, ImageTooLargeError
from deepfake_detector.contracts.input_fit import INPUT_FITS
from deepfake_detector.inference import resampling, turbojpeg

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
# Longer side over shorter side: beyond it an image is refused before decoding (a strip, not a picture).
MAX_ASPECT_RATIO = 100
# What tf.io.decode_image reads (Pillow's JPEG opener also returns MPO, the JPEG variant many cameras
# write). Restricting Pillow to these keeps its riskier plugins (EPS runs Ghostscript) off uploads.
SUPPORTED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP")
JPEG_FORMATS = ("JPEG", "MPO")
UPLOAD_NAME = "uploaded image"

# How an image becomes the model's square input (contracts.input_fit): "crop" keeps the native resolution
# (the center image_size square; up-sampling traces live on the pixel grid and a resize would smear them),
# "resize" scales the whole image (antialiased bilinear). An image smaller than the square is resized.
FITS = INPUT_FITS
# The scales libjpeg's IDCT can decode a JPEG at (1/1 to 1/8), and how large a reduced decode must stay:
# at least this many times the model input on each side, so the antialiased resize that follows still
# does the final low-pass. Measured against full decode + resize, 32 to 160 px inputs: mean difference at
# most 0.7 gray levels and largest 6 on images with heavy noise (sigma 25), 0.2 and 1.3 on photo-like ones.
JPEG_SCALE_DENOMINATORS = (1, 2, 4, 8)
REDUCED_DECODE_MIN_SCALE = 4

EXIF_ORIENTATION_TAG = 0x0112
# What PIL.ImageOps.exif_transpose does for each EXIF orientation (1, upright, needs nothing).
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = (Image.Transpose.TRANSPOSE, Image.Transpose.ROTATE_270, Image.Transpose.TRANSVERSE,
               Image.Transpose.ROTATE_90)

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def decode_image(source: bytes | str | os.PathLike, *, max_bytes: int = MAX_IMAGE_BYTES,
                 max_pixels: int = MAX_IMAGE_PIXELS, name: str | None = None, upright: bool = False) -> np.ndarray:
    """uint8 (H, W, 3) RGB: the pixels the training decoder (datasets.decode_native) gives.

    The first frame of an animation, alpha dropped, grayscale and palettes expanded. The size is
    checked from the header before any pixel is decoded, so a decompression bomb allocates nothing;
    the decode is complete, so a truncated file fails here. Every failure is an ImageError naming
    the source (`name`, else its file name, or "uploaded image" for bytes); the byte and pixel caps
    raise ImageTooLargeError. `upright` applies the EXIF orientation, which training ignores.
    """
    with _opened(source, max_bytes, max_pixels, name) as (image, data):
        transpose = _upright_transpose_of(image, upright)
        return _transposed(_decode_rgb(image, data), transpose)


@dataclass(frozen=True)
class ModelInput:
    """One image as the model sees it, and where that came from in the (upright) image."""

    pixels: np.ndarray                       # float32 (S, S, 3) in [0, 255]
    width: int                               # the image's size, upright when asked for
    height: int
    box: tuple[int, int, int, int] | None    # (left, top, right, bottom) of the crop; None: the whole image


def load_image(source: bytes | str | os.PathLike, image_size: int, *, fit: str = "resize",
               max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS, name: str | None = None,
               upright: bool = False) -> np.ndarray:
    """The model input for one image, float32 (S, S, 3) in [0, 255], as datasets.decode_and_fit makes it:
    fit_for_model(decode_image(...)) at a fraction of the memory (load_model_input's pixels)."""
    return load_model_input(source, image_size, fit=fit, max_bytes=max_bytes, max_pixels=max_pixels, name=name,
                            upright=upright).pixels


def load_model_input(source: bytes | str | os.PathLike, image_size: int, *, fit: str = "resize",
                     max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS, name: str | None = None,
                     upright: bool = False) -> ModelInput:
    """load_image, with the image's size and the box the model sees (what a server reports back).

    "resize" has libjpeg decode a large JPEG at a reduced scale (jpeg_scale_denominator), as training
    does; "crop" decodes at full scale but copies only the crop, and with `upright` turns only the crop.
    """
    check_fit(fit)
    _check_size(image_size)
    with _opened(source, max_bytes, max_pixels, name) as (image, data):
        transpose = _upright_transpose_of(image, upright)
        width, height = image.size
        upright_size = (height, width) if transpose in _SWAPS_AXES else (width, height)
        box = _center_box(upright_size, image_size) if fit == "crop" else None
        if box is not None:
            crop = _decode_rgb(image, data, _stored_box(box, transpose, image.size))
            return ModelInput(_transposed(crop, transpose).astype(np.float32), *upright_size, box)
        extent = _reduce_jpeg_decode(image, image_size)
        pixels = _decode_rgb(image, data if extent is None else None)
    # Turned before it is resized, so a fully decoded photo stored turned gets the very sums its upright twin gets.
    box = None if extent is None else _upright_box(extent, pixels.shape, transpose)
    return ModelInput(_resize(_transposed(pixels, transpose), image_size, box), *upright_size, None)


def fit_for_model(image: np.ndarray, image_size: int, fit: str) -> np.ndarray:
    """float32 (S, S, 3) in [0, 255]: the center S x S crop at native resolution ("crop", when the image
    is at least S on both sides) or resize_for_model ("resize", and "crop" of a smaller image).

    The twin of datasets.fit_tensor_for_model; a crop is the same pixels there, a resize the same to
    float rounding."""
    check_fit(fit)
    pixels = _checked_rgb(image, image_size)
    box = _center_box((pixels.shape[1], pixels.shape[0]), image_size) if fit == "crop" else None
    if box is None:
        return resize_for_model(pixels, image_size)
    left, top, right, bottom = box
    return pixels[top:bottom, left:right].astype(np.float32)


def resize_for_model(image: np.ndarray, image_size: int) -> np.ndarray:
    """float32 (S, S, 3) in [0, 255]: tf.image.resize(bilinear, antialias=True), then clipped.

    resampling.resize_bilinear applies the support-scaled triangle kernel with pixel-center alignment
    that TensorFlow's antialiased resize (and Pillow's BILINEAR filter) uses; the two agree to within
    about 0.005 of a gray level (float rounding), measured on down- and upsampling, square and not.
    """
    return _resize(_checked_rgb(image, image_size), image_size)


def jpeg_scale_denominator(height: int, width: int, image_size: int) -> int:
    """The largest of JPEG_SCALE_DENOMINATORS whose reduced decode (ceil(side / d)) stays at least
    REDUCED_DECODE_MIN_SCALE x image_size on both sides; 1 (full decode) if none does.

    The training decoder (datasets.decode_and_fit) applies the same rule with TensorFlow ops."""
    smallest = REDUCED_DECODE_MIN_SCALE * image_size
    fitting = [d for d in JPEG_SCALE_DENOMINATORS if min(math.ceil(height / d), math.ceil(width / d)) >= smallest]
    return max(fitting, default=1)


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation (1 = upright); a broken EXIF block, common in the wild, counts as upright."""
    try:
        value = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) else 1


def upright_transpose(orientation: int) -> Image.Transpose | None:
    """The transpose that turns an image with this EXIF orientation upright (None when it already is)."""
    return _TRANSPOSE_FOR_ORIENTATION.get(orientation)


def check_fit(fit: str) -> None:
    """Raise ValueError naming an unknown fit and the known ones."""
    if fit not in FITS:
        raise ValueError(f"unknown fit {fit!r}: expected one of {', '.join(map(repr, FITS))}")


def _checked_rgb(image: np.ndarray, image_size: int) -> np.ndarray:
    pixels = np.asarray(image)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or 0 in pixels.shape:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {pixels.shape}")
    _check_size(image_size)
    return pixels


def _check_size(image_size: int) -> None:
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")


def _center_box(size: tuple[int, int], image_size: int) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the center image_size square of a (width, height) image; None if
    it does not fit. Odd margins put the extra pixel at the bottom and right, as datasets.py does."""
    width, height = size
    if width < image_size or height < image_size:
        return None
    left, top = (width - image_size) // 2, (height - image_size) // 2
    return left, top, left + image_size, top + image_size


def _stored_box(box: tuple[int, int, int, int], transpose: Image.Transpose | None,
                stored_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The box in the stored image whose pixels, turned by `transpose`, are `box` of the upright image."""
    if transpose is None:
        return box
    width, height = stored_size
    left, top, right, bottom = box
    corners = [_stored_point(x, y, transpose, width, height) for x, y in ((left, top), (right - 1, bottom - 1))]
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    return min(xs), min(ys), max(xs) + 1, max(ys) + 1


def _stored_point(x: int, y: int, transpose: Image.Transpose, width: int, height: int) -> tuple[int, int]:
    """(x, y) in the stored width x height image of the pixel that `transpose` moves to (x, y)."""
    return {
        Image.Transpose.FLIP_LEFT_RIGHT: (width - 1 - x, y),
        Image.Transpose.ROTATE_180: (width - 1 - x, height - 1 - y),
        Image.Transpose.FLIP_TOP_BOTTOM: (x, height - 1 - y),
        Image.Transpose.TRANSPOSE: (y, x),
        Image.Transpose.ROTATE_270: (y, height - 1 - x),
        Image.Transpose.TRANSVERSE: (width - 1 - y, height - 1 - x),
        Image.Transpose.ROTATE_90: (width - 1 - y, x),
    }[transpose]


@contextlib.contextmanager
def _opened(source: bytes | str | os.PathLike, max_bytes: int, max_pixels: int,
            name: str | None) -> Iterator[tuple[Image.Image, bytes]]:
    """The opened (not yet decoded) image, its size checked, and its file's bytes; decoding failures inside the
    block become ImageErrors naming the source."""
    name, data = _read(source, max_bytes, name)
    if not data:
        raise ImageError(f"{name}: empty file, not an image")
    try:
        with Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLargeError(f"{name}: {width}x{height} pixels is too large "
                                         f"(at most {max_pixels:,} pixels are decoded)")
            if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
                # A 40,000,000 x 1 PNG is within the pixel cap, yet resizing it would cost gigabytes of weights.
                raise ImageError(f"{name}: {width}x{height} pixels: sides more than {MAX_ASPECT_RATIO} times apart "
                                 "are not a picture this detector scores")
            yield image, data
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image in a supported format "
                         f"({', '.join(SUPPORTED_FORMATS)})") from None
    except Image.DecompressionBombError as error:
        raise ImageTooLargeError(f"{name}: too large: {error}") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError) as error:
        raise ImageError(f"{name}: truncated or corrupt image: {error}") from None


def _read(source: bytes | str | os.PathLike, max_bytes: int, name: str | None) -> tuple[str, bytes]:
    """(name for messages, bytes), refusing oversized input before reading it whole."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        name = name or UPLOAD_NAME
        if len(source) > max_bytes:
            raise ImageTooLargeError(f"{name}: {len(source):,} bytes is too large (at most {max_bytes:,})")
        return name, bytes(source)
    path = Path(source)
    name = name or path.name
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise ImageError(f"{name}: file not found ({path})") from None
    except IsADirectoryError:
        raise ImageError(f"{name}: is a directory, not an image file") from None
    except OSError as error:
        raise ImageError(f"{name}: cannot read the file: {error.strerror or error}") from None
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"{name}: larger than {max_bytes:,} bytes")
    return name, data


def _upright_transpose_of(image: Image.Image, upright: bool) -> Image.Transpose | None:
    return upright_transpose(exif_orientation(image)) if upright else None


def _transposed(pixels: np.ndarray, transpose: Image.Transpose | None) -> np.ndarray:
    """What Image.transpose does, on an array of any dtype and channel count (a copy)."""
    if transpose is None:
        return pixels
    return np.ascontiguousarray({
        Image.Transpose.FLIP_LEFT_RIGHT: lambda: pixels[:, ::-1],
        Image.Transpose.ROTATE_180: lambda: pixels[::-1, ::-1],
        Image.Transpose.FLIP_TOP_BOTTOM: lambda: pixels[::-1],
        Image.Transpose.TRANSPOSE: lambda: pixels.swapaxes(0, 1),
        Image.Transpose.ROTATE_270: lambda: np.rot90(pixels, -1),
        Image.Transpose.TRANSVERSE: lambda: np.rot90(pixels, 2).swapaxes(0, 1),
        Image.Transpose.ROTATE_90: lambda: np.rot90(pixels, 1),
    }[transpose]())


def _resize(pixels: np.ndarray, image_size: int, box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """resize_for_model of the (left, top, right, bottom) `box` of the pixels (all of them when None): a
    reduced JPEG decode's last column and row stand for less than a whole pixel of the original."""
    resized = resampling.resize_bilinear(pixels, image_size, box)
    return np.clip(resized, 0.0, 255.0, out=resized)


_LEFT, _TOP, _RIGHT, _BOTTOM = 1, 2, 3, 4  # the stored image's edges, as _upright_box marks them


def _upright_box(extent: tuple[float, float], shape: tuple[int, ...],
                 transpose: Image.Transpose | None) -> tuple[float, float, float, float]:
    """The (width, height) extent of a reduced decode, which starts at its top-left corner as stored, as a
    (left, top, right, bottom) box of the pixels once turned upright: the edges of the stored image are
    marked and turned with the pixels, so the box follows whichever edge the partial pixels went to."""
    height, width = shape[:2]
    margins = {_LEFT: 0.0, _TOP: 0.0, _RIGHT: width - extent[0], _BOTTOM: height - extent[1]}
    marks = np.zeros((3, 3), dtype=np.int8)
    marks[1, 0], marks[0, 1], marks[1, 2], marks[2, 1] = _LEFT, _TOP, _RIGHT, _BOTTOM
    turned = _transposed(marks, transpose)
    upright_width, upright_height = (height, width) if transpose in _SWAPS_AXES else (width, height)
    return (margins[turned[1, 0]], margins[turned[0, 1]],
            upright_width - margins[turned[1, 2]], upright_height - margins[turned[2, 1]])


def _reduce_jpeg_decode(image: Image.Image, image_size: int) -> tuple[float, float] | None:
    """Have libjpeg decode a large JPEG at 1/2, 1/4 or 1/8 scale (jpeg_scale_denominator), before loading;
    the original's (width, height) in decoded pixels, or None when the decode stays full."""
    if image.format not in JPEG_FORMATS:
        return None
    width, height = image.size
    denominator = jpeg_scale_denominator(height, width, image_size)
    if denominator == 1:
        return None
    image.draft(image.mode, (width // denominator, height // denominator))
    return width / denominator, height / denominator


def _decode_rgb(image: Image.Image, data: bytes | None,
                box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """uint8 RGB of the whole image or of `box` (left, top, right, bottom), converted as TensorFlow's
    decoders do; a box is cut before any conversion, so only its pixels are copied. A JPEG's file bytes
    (`data`; None once a reduced decode is drafted) let TurboJPEG decode it at 3 bytes a pixel."""
    if data is not None and image.format in JPEG_FORMATS:
        pixels = turbojpeg.decode_rgb(data, image.mode, image.size)
        if pixels is not None:
            if box is None:
                return pixels
            left, top, right, bottom = box
            return pixels[top:bottom, left:right].copy()
    image.load()
    region = image if box is None else image.crop(box)
    if image.mode in _SIXTEEN_BIT_MODES:
        # TensorFlow's PNG decoder keeps the high byte of 16-bit samples (libpng's strip_16).
        gray = (np.asarray(region).astype(np.int64) >> 8).clip(0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode == "CMYK":
        return _cmyk_to_rgb(np.asarray(region))
    rgb = np.array(region if region.mode == "RGB" else region.convert("RGB"), dtype=np.uint8)
    if image.format == "GIF" and image.mode in ("P", "L") and "transparency" in image.info:
        # TensorFlow's GIF decoder paints the first frame's transparent pixels black.
        rgb[np.asarray(region) == image.info["transparency"]] = 0
    return rgb


def _cmyk_to_rgb(cmyk: np.ndarray) -> np.ndarray:
    """TensorFlow's CMYK conversion (Pillow's rounds differently, by one level): inverted (Adobe)
    samples multiplied, floor-divided by 255."""
    inverted = 255 - cmyk.astype(np.int32)
    return (inverted[..., :3] * inverted[..., 3:4] // 255).astype(np.uint8)
