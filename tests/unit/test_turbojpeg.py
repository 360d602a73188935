"""Full-scale JPEG decodes through TurboJPEG give Pillow's pixels, and whatever TurboJPEG would treat differently
(CMYK, a truncated or slightly broken file) is left to Pillow, so no caller sees another behaviour."""
import io

import numpy as np
import pytest
from PIL import Image

from deepfake_detector.contracts.errors import ImageError
from deepfake_detector.inference import turbojpeg
from deepfake_detector.inference.images import decode_image, load_model_input


def photo_like(height: int = 181, width: int = 243) -> np.ndarray:
    """Smooth gradients with noise: every DCT frequency and real chroma detail."""
    rng = np.random.default_rng(11)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], axis=-1)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def jpeg(pixels: np.ndarray, mode: str = "RGB", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, "JPEG", **options)
    return buffer.getvalue()


def pillow_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.mark.parametrize("options", [
    {"quality": 90}, {"quality": 75, "subsampling": 0}, {"quality": 60, "subsampling": 1},
    {"quality": 85, "progressive": True}, {"quality": 95, "optimize": True},
], ids=["4:2:0", "4:4:4", "4:2:2", "progressive", "optimized"])
def test_color_jpeg_is_pillows_pixels(options):
    data = jpeg(photo_like(), **options)
    pixels = turbojpeg.decode_rgb(data, "RGB", (243, 181))
    assert pixels is not None and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels, pillow_rgb(data))


def test_grayscale_jpeg_is_expanded_like_pillow():
    data = jpeg(photo_like(), "L")
    np.testing.assert_array_equal(turbojpeg.decode_rgb(data, "L", (243, 181)), pillow_rgb(data))


def test_cmyk_and_mismatched_sizes_are_left_to_pillow():
    assert turbojpeg.decode_rgb(jpeg(photo_like(), "CMYK"), "CMYK", (243, 181)) is None
    assert turbojpeg.decode_rgb(jpeg(photo_like()), "RGB", (100, 100)) is None


def test_a_truncated_jpeg_still_fails_as_truncated():
    data = jpeg(photo_like(400, 400), quality=95)[:-3000]
    assert turbojpeg.decode_rgb(data, "RGB", (400, 400)) is None
    with pytest.raises(ImageError, match="truncated or corrupt"):
        decode_image(data, name="cut.jpg")


def test_a_jpeg_libjpeg_only_warns_about_decodes_as_pillow_decodes_it():
    data = jpeg(photo_like())
    end = data.rindex(b"\xff\xd9")
    noisy = data[:end] + b"\x00\x01\x02" + data[end:]  # extraneous bytes before the end marker
    np.testing.assert_array_equal(decode_image(noisy), pillow_rgb(noisy))


def test_a_crop_of_a_large_upright_turned_jpeg_is_the_same_pixels_as_pillows():
    pixels = photo_like(700, 500)
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: upright is 700 wide, 500 high
    Image.fromarray(pixels).save(buffer, "JPEG", quality=92, exif=exif)
    loaded = load_model_input(buffer.getvalue(), 96, fit="crop", upright=True)
    upright = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).transpose(Image.Transpose.ROTATE_270))
    left, top, right, bottom = loaded.box
    assert (loaded.width, loaded.height) == (700, 500)
    np.testing.assert_array_equal(loaded.pixels, upright[top:bottom, left:right].astype(np.float32))
