"""Small encoded images for the serving tests, good and hostile, made in memory."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from deepfake_detector.benchmarks.preprocessing import oversized_png_header

EXIF_ORIENTATION = 0x0112


def pixels(width: int = 96, height: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth, asymmetric RGB picture (so rotations and flips change it)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([255 * x / width, 255 * y / height, 128 + 60 * np.sin(x / 7 + seed)], axis=-1)
    return (base + rng.uniform(-20, 20, base.shape)).clip(0, 255).astype(np.uint8)


def encode(image: Image.Image | np.ndarray, image_format: str, **options) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def jpeg(width: int = 96, height: int = 64, seed: int = 0, quality: int = 90) -> bytes:
    return encode(pixels(width, height, seed), "JPEG", quality=quality)


def png(width: int = 96, height: int = 64, seed: int = 0) -> bytes:
    return encode(pixels(width, height, seed), "PNG")


def truncated_jpeg() -> bytes:
    data = jpeg(128, 128)
    return data[: len(data) // 2]


def cmyk_jpeg() -> bytes:
    return encode(Image.fromarray(pixels()).convert("CMYK"), "JPEG", quality=90)


def png_16_bit() -> bytes:
    gray = (np.linspace(0, 65535, 64 * 96).reshape(64, 96)).astype(np.uint16)
    return encode(Image.fromarray(gray), "PNG")


def palette_png() -> bytes:
    return encode(Image.fromarray(pixels()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16), "PNG")


def rgba_png() -> bytes:
    rgba = np.dstack([pixels(), np.linspace(0, 255, 64 * 96).reshape(64, 96).astype(np.uint8)])
    return encode(Image.fromarray(rgba), "PNG")


def grayscale_jpeg() -> bytes:
    return encode(Image.fromarray(pixels()).convert("L"), "JPEG", quality=90)


def animated_gif() -> bytes:
    frames = [Image.fromarray(pixels(seed=seed)).convert("P", palette=Image.Palette.ADAPTIVE) for seed in range(3)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def decompression_bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A valid PNG header claiming width x height pixels, with a token amount of data behind it."""
    return oversized_png_header(width, height)


def blocky_pixels(width: int = 96, height: int = 64, block: int = 16, seed: int = 1) -> np.ndarray:
    """Flat 16x16 color blocks: a 4:4:4 JPEG of it decodes to the same pixels however it is rotated."""
    rng = np.random.default_rng(seed)
    colors = rng.integers(0, 256, (height // block, width // block, 3), dtype=np.uint8)
    return np.repeat(np.repeat(colors, block, axis=0), block, axis=1)


def lossless_jpeg_of(image: np.ndarray) -> bytes:
    return encode(image, "JPEG", quality=100, subsampling=0)


def exif_rotated_jpeg(upright: np.ndarray, orientation: int = 6) -> bytes:
    """The upright picture stored as a camera would: pixels turned, plus the EXIF tag that undoes it.

    Orientation 6 means "rotate 90 degrees clockwise to view": the stored pixels are the upright
    picture turned 90 degrees anticlockwise.
    """
    assert orientation == 6
    stored = np.rot90(upright, k=1)  # anticlockwise
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    return encode(stored, "JPEG", quality=100, subsampling=0, exif=exif.tobytes())


def browser_form(parts: list[tuple[str, str | None, bytes]], boundary: str = "----WebKitFormBoundaryx7Qd3kPz") -> dict:
    """Request arguments for a multipart/form-data body laid out as browsers and curl write it, from
    (field, file name or None for a plain field, content) parts. Werkzeug's test client writes an empty file
    without the line break that must precede the next boundary, which no browser does."""
    body = b""
    for field, filename, content in parts:
        disposition = f'form-data; name="{field}"' + ("" if filename is None else f'; filename="{filename}"')
        content_type = "" if filename is None else "Content-Type: application/octet-stream\r\n"
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n{content_type}\r\n"
        body += head.encode() + content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}
