"""JPEG decoding is libjpeg-turbo's on both sides: Pillow's decoder in serving and
tf.io.decode_jpeg(dct_method="INTEGER_ACCURATE") in training give the same pixels for every layout, also
when a large JPEG is decoded at a reduced scale, which stays close to a full decode + resize."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deepfake_detector.inference.images import decode_image, jpeg_scale_denominator, load_image, resize_for_model
from tests.unit.decode_fixtures import RESIZE_TOLERANCE, training_decode, training_fit
from tests.unit.inference_fixtures import encode, photo

# A reduced-scale decode (at least 4x the model input per side) against the full decode + resize, on
# images with heavy noise: measured mean up to 0.7 and largest 6 gray levels (see images.py).
REDUCED_DECODE_MEAN_TOLERANCE = 1.0
REDUCED_DECODE_MAX_TOLERANCE = 8.0


@pytest.mark.parametrize("quality", [75, 90, 95])
@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:2", "4:2:0"])
@pytest.mark.parametrize("progressive", [False, True])
def test_color_jpeg_decodes_to_the_training_pixels(quality, subsampling, progressive):
    # Before, training used TensorFlow's default fast IDCT, 4 to 9 gray levels from Pillow's.
    for height, width in [(240, 200), (67, 45), (3, 9), (1, 1)]:
        data = encode(photo(height, width, seed=quality), "JPEG", quality=quality, subsampling=subsampling,
                      progressive=progressive)
        np.testing.assert_array_equal(decode_image(data), training_decode(data))


@pytest.mark.parametrize("kind", ["gray", "gray progressive", "cmyk", "mpo"])
def test_other_jpeg_kinds_decode_to_the_training_pixels(kind):
    pixels = photo(45, 61, seed=5)
    data = {
        "gray": lambda: encode(pixels[..., 0], "JPEG", quality=90),
        "gray progressive": lambda: encode(pixels[..., 0], "JPEG", quality=90, progressive=True),
        "cmyk": lambda: encode(Image.fromarray(np.dstack([pixels, pixels[..., :1]]), "CMYK"), "JPEG", quality=90),
        "mpo": lambda: encode(pixels, "MPO", save_all=True, append_images=[Image.fromarray(pixels[::-1])]),
    }[kind]()
    np.testing.assert_array_equal(decode_image(data), training_decode(data))


@pytest.mark.parametrize(("height", "width", "denominator"), [(130, 140, 2), (300, 270, 4), (520, 700, 8)])
@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:0"])
@pytest.mark.parametrize("progressive", [False, True])
def test_large_jpeg_is_decoded_reduced_alike_in_serving_and_training(height, width, denominator, subsampling,
                                                                     progressive):
    size = 16
    assert jpeg_scale_denominator(height, width, size) == denominator
    data = encode(photo(height, width, seed=height), "JPEG", quality=75, subsampling=subsampling,
                  progressive=progressive)
    np.testing.assert_allclose(load_image(data, size), training_fit(data, size, "resize"), rtol=0,
                               atol=RESIZE_TOLERANCE)


@pytest.mark.parametrize(("height", "width"), [(256, 333), (513, 512), (1024, 1401)])
def test_reduced_decode_stays_close_to_a_full_decode_and_resize(height, width):
    size = 32
    data = encode(photo(height, width, seed=width), "JPEG", quality=90)
    assert jpeg_scale_denominator(height, width, size) > 1
    difference = np.abs(load_image(data, size) - resize_for_model(decode_image(data), size))
    assert difference.mean() <= REDUCED_DECODE_MEAN_TOLERANCE
    assert difference.max() <= REDUCED_DECODE_MAX_TOLERANCE


@pytest.mark.parametrize(("height", "width", "denominator"), [
    (300, 300, 1), (895, 2000, 1), (1792, 1792, 2), (5000, 8000, 4), (7168, 7200, 8)])
def test_reduced_decode_keeps_four_times_the_model_input(height, width, denominator):
    assert jpeg_scale_denominator(height, width, 224) == denominator
