"""Decode and resize images exactly as training did (tf.io.decode_image + antialiased bilinear resize),
with numpy and Pillow only, so a TensorFlow-free server feeds the model the pixels it was trained on.

Where Pillow's defaults differ from TensorFlow's decoders, this module reproduces TensorFlow:
JPEGs use libjpeg's fast integer IDCT and its "fancy" chroma upsampling, 16-bit PNGs keep the high
byte, transparent GIF pixels are black and CMYK JPEGs use TensorFlow's integer conversion. EXIF
orientation is ignored, as in training, unless a caller asks for upright pixels (a served phone photo).
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from deepfake_detector.contracts.errors import ImageError, ImageTooLargeError

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
# What tf.io.decode_image reads (Pillow's JPEG opener also returns MPO, the JPEG variant many cameras
# write). Restricting Pillow to these keeps its riskier plugins (EPS runs Ghostscript) off uploads.
SUPPORTED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP")
UPLOAD_NAME = "uploaded image"

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

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")

# libjpeg's YCbCr -> RGB tables (jdcolor.c: 16-bit fixed point, arithmetic right shifts).
_CENTERED = np.arange(256, dtype=np.int32) - 128
_CR_TO_R = ((int(1.40200 * 65536 + 0.5) * _CENTERED + 32768) >> 16).astype(np.int16)
_CB_TO_B = ((int(1.77200 * 65536 + 0.5) * _CENTERED + 32768) >> 16).astype(np.int16)
_CR_TO_G = -int(0.71414 * 65536 + 0.5) * _CENTERED
_CB_TO_G = -int(0.34414 * 65536 + 0.5) * _CENTERED + 32768


def decode_image(source: bytes | str | os.PathLike, *, max_bytes: int = MAX_IMAGE_BYTES,
                 max_pixels: int = MAX_IMAGE_PIXELS, name: str | None = None, upright: bool = False) -> np.ndarray:
    """uint8 (H, W, 3) RGB: the pixels tf.io.decode_image(channels=3, expand_animations=False) gives.

    The first frame of an animation, alpha dropped, grayscale and palettes expanded. The size is
    checked from the header before any pixel is decoded, so a decompression bomb allocates nothing;
    the decode is complete, so a truncated file fails here. Every failure is an ImageError naming
    the source (`name`, else its file name, or "uploaded image" for bytes); the byte and pixel caps
    raise ImageTooLargeError. `upright` applies the EXIF orientation, which training ignores.
    """
    name, data = _read(source, max_bytes, name)
    if not data:
        raise ImageError(f"{name}: empty file, not an image")
    try:
        with Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLargeError(f"{name}: {width}x{height} pixels is too large "
                                         f"(at most {max_pixels:,} pixels are decoded)")
            transpose = upright_transpose(exif_orientation(image)) if upright else None
            pixels = _decode_rgb(image)
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image in a supported format "
                         f"({', '.join(SUPPORTED_FORMATS)})") from None
    except Image.DecompressionBombError as error:
        raise ImageTooLargeError(f"{name}: too large: {error}") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError) as error:
        raise ImageError(f"{name}: truncated or corrupt image: {error}") from None
    if transpose is None:
        return pixels
    return np.asarray(Image.fromarray(pixels).transpose(transpose))


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


def resize_for_model(image: np.ndarray, image_size: int) -> np.ndarray:
    """float32 (S, S, 3) in [0, 255]: tf.image.resize(bilinear, antialias=True), then clipped.

    Pillow's BILINEAR filter on float ("F") images is the same support-scaled triangle kernel with
    pixel-center alignment that TensorFlow's antialiased resize uses; the two agree to within
    about 0.005 of a gray level (float rounding), measured on down- and upsampling, square and not.
    """
    pixels = np.asarray(image)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or 0 in pixels.shape:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {pixels.shape}")
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(pixels[..., c], dtype=np.float32))
                   .resize((image_size, image_size), Image.Resampling.BILINEAR))
        for c in range(3)
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 255.0)


def load_image(source: bytes | str | os.PathLike, image_size: int, *, max_bytes: int = MAX_IMAGE_BYTES,
               max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """The model input for one image: decode_image, then resize_for_model."""
    return resize_for_model(decode_image(source, max_bytes=max_bytes, max_pixels=max_pixels), image_size)


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


def _decode_rgb(image: Image.Image) -> np.ndarray:
    if image.format in ("JPEG", "MPO"):
        return _decode_jpeg(image)
    image.load()
    if image.mode in _SIXTEEN_BIT_MODES:
        # TensorFlow's PNG decoder keeps the high byte of 16-bit samples (libpng's strip_16).
        gray = (np.asarray(image).astype(np.int64) >> 8).clip(0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    rgb = _as_rgb(image)
    if image.format == "GIF" and image.mode in ("P", "L") and "transparency" in image.info:
        # TensorFlow's GIF decoder paints the first frame's transparent pixels black.
        rgb[np.asarray(image) == image.info["transparency"]] = 0
    return rgb


def _as_rgb(image: Image.Image) -> np.ndarray:
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return np.array(rgb, dtype=np.uint8)


def _decode_jpeg(image: Image.Image) -> np.ndarray:
    """JPEG pixels as TensorFlow decodes them: libjpeg's fast integer IDCT (TF's default, 4 to 9
    gray levels away from Pillow's accurate one) and fancy (triangle) chroma upsampling.

    Pillow offers the fast IDCT only together with plain pixel-replicating upsampling (its "draft"
    decoder flag), so subsampled chroma is decoded that way and upsampled here with libjpeg's own
    integer formulas (jdsample.c), then converted with libjpeg's tables (jdcolor.c). Layouts with
    no such path (4:4:0, odd factors) use Pillow's default decoder, a few levels from TensorFlow.
    """
    factors = [(h, v) for _, h, v, _ in getattr(image, "layer", [])]
    if not factors:
        image.load()
        return _as_rgb(image)
    max_h, max_v = max(h for h, _ in factors), max(v for _, v in factors)
    if all(f == (max_h, max_v) for f in factors):  # no chroma subsampling: nothing to upsample
        image.decoderconfig = (1, 1)  # (scale, draft): draft selects libjpeg's fast IDCT
        image.load()
        if image.mode == "CMYK":
            return _cmyk_to_rgb(np.asarray(image))
        return _as_rgb(image)
    ratio = (max_h // factors[1][0], max_v // factors[1][1]) if len(factors) == 3 else None
    if (image.mode == "RGB" and _is_ycbcr(image) and factors[0] == (max_h, max_v) and factors[1] == factors[2]
            and ratio in ((2, 1), (2, 2)) and max_h % factors[1][0] == 0 and max_v % factors[1][1] == 0
            and image.draft("YCbCr", None) is not None):
        image.decoderconfig = (1, 1)
        image.load()
        return _ycbcr_to_rgb(np.asarray(image), ratio)
    image.load()
    if image.mode == "CMYK":
        return _cmyk_to_rgb(np.asarray(image))
    return _as_rgb(image)


def _is_ycbcr(image: Image.Image) -> bool:
    """libjpeg's guess of a 3-component JPEG's color space (jdapimin.c default_decompress_parms)."""
    if "jfif" in image.info:
        return True
    if "adobe" in image.info:
        return image.info.get("adobe_transform") != 0
    return tuple(component[0] for component in image.layer) != (82, 71, 66)  # "RGB" ids: no transform


def _ycbcr_to_rgb(ycbcr: np.ndarray, ratio: tuple[int, int]) -> np.ndarray:
    """RGB from a draft-decoded YCbCr image whose chroma planes were upsampled by pixel replication."""
    height, width = ycbcr.shape[:2]
    step_x, step_y = ratio
    chroma = []
    for channel in (1, 2):
        plane = ycbcr[::step_y, ::step_x, channel].astype(np.int16)
        if plane.shape[1] <= 2:  # libjpeg replicates pixels for planes this narrow, as the draft decode did
            chroma.append(ycbcr[..., channel])
            continue
        columns = _fancy_upsample_columns(plane) if step_y == 2 else plane
        chroma.append(_fancy_upsample_rows(columns, vertical_too=step_y == 2)[:height, :width])
    cb, cr = chroma
    luma = ycbcr[..., 0].astype(np.int16)
    rgb = np.empty((height, width, 3), dtype=np.uint8)
    rgb[..., 0] = np.clip(luma + _CR_TO_R[cr], 0, 255)
    green = _CB_TO_G[cb]
    green += _CR_TO_G[cr]
    green >>= 16
    green += luma
    rgb[..., 1] = np.clip(green, 0, 255)
    rgb[..., 2] = np.clip(luma + _CB_TO_B[cb], 0, 255)
    return rgb


def _fancy_upsample_columns(plane: np.ndarray) -> np.ndarray:
    """Vertical half of libjpeg's h2v2_fancy_upsample: 3 x nearer row + further row (edge rows
    replicated, as libjpeg's context rows are), left unscaled for the horizontal pass."""
    tripled = 3 * plane
    columns = np.empty((2 * plane.shape[0], plane.shape[1]), dtype=np.int16)
    upper, lower = columns[0::2], columns[1::2]
    upper[...] = tripled
    upper[0] += plane[0]
    upper[1:] += plane[:-1]
    lower[...] = tripled
    lower[:-1] += plane[1:]
    lower[-1] += plane[-1]
    return columns


def _fancy_upsample_rows(plane: np.ndarray, vertical_too: bool) -> np.ndarray:
    """Horizontal triangle upsampling with libjpeg's rounding: h2v1 (biases 1, 2, >> 2) on raw
    samples, or the second half of h2v2 (biases 8, 7, >> 4) on column sums."""
    bias_left, bias_right, shift = (8, 7, 4) if vertical_too else (1, 2, 2)
    tripled = 3 * plane
    out = np.empty((plane.shape[0], 2 * plane.shape[1]), dtype=np.int16)
    left, right = out[:, 0::2], out[:, 1::2]
    left[...] = tripled + bias_left
    left[:, 0] += plane[:, 0]
    left[:, 1:] += plane[:, :-1]
    right[...] = tripled + bias_right
    right[:, :-1] += plane[:, 1:]
    right[:, -1] += plane[:, -1]
    out >>= shift
    return out.astype(np.uint8)


def _cmyk_to_rgb(cmyk: np.ndarray) -> np.ndarray:
    """TensorFlow's CMYK conversion: inverted (Adobe) samples multiplied, floor-divided by 255."""
    inverted = 255 - cmyk.astype(np.int32)
    return (inverted[..., :3] * inverted[..., 3:4] // 255).astype(np.uint8)
