"""Section 2: cost of turning a JPEG into model input with each fit, Pillow (serving) vs TensorFlow
(training), both decoding with libjpeg-turbo, and of refusing a decompression bomb from its header (the
guard must cost next to nothing)."""
from __future__ import annotations

import io
import logging
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from deepfake_detector.benchmarks.errors import BenchmarkError
from deepfake_detector.benchmarks.settings import BenchSettings
from deepfake_detector.benchmarks.timing import ratio, summarize_ms, time_calls

logger = logging.getLogger(__name__)

SOURCE_SIZE = 300  # the demo dataset's image size, a typical face crop
JPEG_QUALITY = 90
BOMB_SIDE = 30_000  # a PNG header claiming 30000 x 30000 RGB pixels: 2.7 GB if it were decoded
TARGET_MS = 1.5  # issue 15: decode + fit of a 300x300 JPEG in serving


def sample_jpeg(size: int = SOURCE_SIZE, seed: int = 0) -> bytes:
    """A photo-like JPEG (smooth shapes plus sensor-like noise), so the decoder does realistic work."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.uniform(0, 255, (8, 8, 3)).astype(np.uint8)).resize((size, size), Image.BICUBIC)
    pixels = np.asarray(coarse, dtype=np.float32) + rng.normal(0, 6, (size, size, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def large_jpeg(width: int, height: int, orientation: int = 6) -> bytes:
    """A photo-like width x height camera JPEG with an EXIF orientation, made with Pillow alone (a numpy
    float copy of 40 MP would cost the benchmark process half a gigabyte)."""
    coarse = Image.fromarray(np.random.default_rng(0).uniform(0, 255, (6, 8, 3)).astype(np.uint8))
    noise = Image.effect_noise((width, height), 24).convert("RGB")
    picture = Image.blend(coarse.resize((width, height), Image.BILINEAR), noise, 0.15)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=JPEG_QUALITY, exif=exif.tobytes())
    return buffer.getvalue()


def oversized_png_header(width: int = BOMB_SIDE, height: int = BOMB_SIDE) -> bytes:
    """A valid PNG signature and header claiming width x height RGB pixels, with a few bytes of pixel data."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def measure_preprocessing(jpeg_file: Path, image_size: int, settings: BenchSettings) -> dict:
    """p50 of file-to-model-input for both decoders and both fits; each output is checked to be the model's
    input shape. "paths" is the "resize" fit (the default), "crop_paths" the center crop."""
    from deepfake_detector.components.data.datasets import decode_and_fit
    from deepfake_detector.inference import load_image

    def timed(fit: str) -> dict:
        paths = {
            "pillow": lambda: load_image(jpeg_file, image_size, fit=fit),
            "tensorflow": lambda: decode_and_fit(str(jpeg_file), image_size, fit).numpy(),
        }
        return {name: _timed_path(f"{name} {fit}", call, (image_size, image_size, 3), settings)
                for name, call in paths.items()}

    resize, crop = timed("resize"), timed("crop")
    with Image.open(jpeg_file) as image:
        source = f"{image.width}x{image.height} JPEG"
    return {"source": source, "image_size": image_size, "paths": resize, "crop_paths": crop, "target_ms": TARGET_MS,
            "tensorflow_over_pillow_p50": ratio(resize["tensorflow"]["p50_ms"], resize["pillow"]["p50_ms"]),
            "oversized_header_refusal": measure_bomb_refusal(settings)}


def _timed_path(label: str, call, expected: tuple[int, ...], settings: BenchSettings) -> dict:
    shape = tuple(np.asarray(call()).shape[-3:])
    if shape != expected:
        raise BenchmarkError(f"{label} preprocessing returned shape {shape}, expected {expected}")
    timings = summarize_ms(time_calls(call, settings.preprocess_reps, warmup=settings.warmup))
    logger.info("Preprocessing %s: p50 %.2f ms", label, timings["p50_ms"])
    return timings


def measure_bomb_refusal(settings: BenchSettings) -> dict:
    """p50 of refusing a decompression bomb: decode_image must raise ImageError from the header alone."""
    from deepfake_detector.contracts.errors import ImageError
    from deepfake_detector.inference import decode_image

    data = oversized_png_header()

    def refuse() -> None:
        try:
            decode_image(data)
        except ImageError:
            return
        raise BenchmarkError(f"a PNG claiming {BOMB_SIDE}x{BOMB_SIDE} pixels was decoded instead of refused")

    timings = summarize_ms(time_calls(refuse, settings.preprocess_reps, warmup=settings.warmup))
    logger.info("Refusing a %dx%d PNG header: p50 %.3f ms", BOMB_SIDE, BOMB_SIDE, timings["p50_ms"])
    return {"claimed": f"{BOMB_SIDE}x{BOMB_SIDE} PNG", **timings}
