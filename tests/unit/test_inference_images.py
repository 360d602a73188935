"""Inference-side decoding and resizing: the same pixels as the TensorFlow training pipeline, and
bad or hostile inputs refused with an ImageError that names them."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from deepfake_detector.benchmarks.preprocessing import oversized_png_header
from deepfake_detector.components.data.datasets import decode_and_resize
from deepfake_detector.contracts.errors import ImageError
from deepfake_detector.inference.images import decode_image, load_image, resize_for_model
from tests.unit.decode_fixtures import RESIZE_TOLERANCE, training_decode
from tests.unit.inference_fixtures import encode, photo


@pytest.mark.parametrize(("height", "width", "size"), [(300, 300, 224), (96, 96, 64), (50, 50, 224),
                                                         (400, 300, 224), (180, 260, 224), (7, 5, 64)])
def test_resize_matches_tensorflow_antialiased_bilinear(height, width, size):
    image = photo(height, width, seed=height)
    expected = tf.clip_by_value(tf.image.resize(image, (size, size), method="bilinear", antialias=True), 0, 255)
    resized = resize_for_model(image, size)
    assert resized.shape == (size, size, 3) and resized.dtype == np.float32
    np.testing.assert_allclose(resized, expected.numpy(), rtol=0, atol=RESIZE_TOLERANCE)


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
@pytest.mark.parametrize(("height", "width"), [(300, 300), (120, 90), (45, 130), (33, 33)])
def test_file_loads_like_the_training_pipeline(tmp_path, image_format, height, width):
    path = tmp_path / f"face.{image_format.lower()}"
    path.write_bytes(encode(photo(height, width), image_format))
    expected = decode_and_resize(str(path), 64).numpy()
    np.testing.assert_allclose(load_image(path, 64), expected, rtol=0, atol=RESIZE_TOLERANCE)


@pytest.mark.parametrize("kind", ["gray png", "rgba png", "16-bit png", "palette png", "palette gif",
                                  "transparent gif", "gray jpeg", "cmyk jpeg", "bmp", "webp"])
def test_other_kinds_decode_to_the_training_decoders_rgb(kind):
    pixels = photo(37, 53, seed=3)
    rgba = np.dstack([pixels, pixels[..., :1]])
    data = {
        "gray png": lambda: encode(pixels[..., 0], "PNG"),
        "rgba png": lambda: encode(Image.fromarray(rgba, "RGBA"), "PNG"),
        "16-bit png": lambda: encode(pixels[..., 0].astype(np.uint16) * 257 + 100, "PNG"),
        "palette png": lambda: encode(Image.fromarray(pixels).quantize(40), "PNG", transparency=2),
        "palette gif": lambda: encode(Image.fromarray(pixels).quantize(40), "GIF"),
        "transparent gif": lambda: encode(Image.fromarray(pixels).quantize(40), "GIF", transparency=2),
        "gray jpeg": lambda: encode(pixels[..., 0], "JPEG", quality=90),
        "cmyk jpeg": lambda: encode(Image.fromarray(rgba, "CMYK"), "JPEG", quality=90),
        "bmp": lambda: encode(pixels, "BMP"),
        "webp": lambda: encode(pixels, "WEBP", quality=80),
    }[kind]()
    decoded = decode_image(data)
    assert decoded.shape == (37, 53, 3) and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, training_decode(data))


def test_animated_gif_yields_its_first_frame():
    first, second = photo(20, 30, seed=1), photo(20, 30, seed=2)
    data = encode(Image.fromarray(first).quantize(64), "GIF", save_all=True,
                  append_images=[Image.fromarray(second).quantize(64)])
    np.testing.assert_array_equal(decode_image(data), training_decode(data))


def test_exif_orientation_is_ignored_as_in_training():
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees": training never applies it
    data = encode(photo(40, 60), "JPEG", exif=exif.tobytes())
    assert decode_image(data).shape == (40, 60, 3)


def test_path_and_bytes_decode_alike(tmp_path):
    data = encode(photo(50, 40), "PNG")
    (tmp_path / "a.png").write_bytes(data)
    np.testing.assert_array_equal(decode_image(tmp_path / "a.png"), decode_image(data))
    np.testing.assert_array_equal(decode_image(str(tmp_path / "a.png")), decode_image(data))


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty"),
    (b"hello, this is plain text and not a picture", "not an image"),
    (encode(photo(64, 64), "PNG")[:300], "truncated or corrupt"),
    (encode(photo(64, 64), "JPEG")[:400], "truncated or corrupt"),
    (encode(photo(16, 16), "TIFF"), "supported format"),
])
def test_bad_upload_is_refused_naming_it(data, reason):
    with pytest.raises(ImageError, match=f"uploaded image: .*{reason}"):
        decode_image(data)


def test_bad_file_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "broken_face.jpg"
    path.write_bytes(encode(photo(64, 64), "JPEG")[:400])
    with pytest.raises(ImageError, match="broken_face.jpg: truncated or corrupt"):
        load_image(path, 32)


def test_missing_file_is_an_image_error(tmp_path):
    with pytest.raises(ImageError, match="nowhere.png: file not found"):
        decode_image(tmp_path / "nowhere.png")


def test_oversized_upload_is_refused_before_decoding():
    with pytest.raises(ImageError, match="uploaded image: .*too large"):
        decode_image(encode(photo(64, 64), "PNG"), max_bytes=1000)


@pytest.mark.parametrize("side", [7000, 30000])
def test_decompression_bomb_is_refused_from_its_header(side):
    # The pixel data is a few bytes: a decoder that tried would fail on truncation (or allocate
    # 147 MB to 2.7 GB first); "too large" shows the header was checked before any decoding.
    # How long the refusal takes is measured by `make bench` (preprocessing.oversized_header_refusal).
    with pytest.raises(ImageError, match="uploaded image: .*too large"):
        decode_image(oversized_png_header(side, side))


def test_pixel_limit_is_configurable():
    with pytest.raises(ImageError, match="100x100 pixels is too large"):
        decode_image(encode(photo(100, 100), "PNG"), max_pixels=5000)


def test_resize_refuses_non_rgb_arrays():
    with pytest.raises(ValueError, match=r"expected an RGB image of shape \(H, W, 3\), got \(10, 10\)"):
        resize_for_model(np.zeros((10, 10), np.uint8), 32)
