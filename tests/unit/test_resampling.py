"""The sparse antialiased bilinear resize gives Pillow's BILINEAR resize of float planes (the kernel the
TensorFlow parity tests were first written against), for shrinking, enlarging, odd shapes and the
fractional extent of a reduced JPEG decode."""
import numpy as np
import pytest
from PIL import Image

from deepfake_detector.inference.resampling import resampling_weights, resize_bilinear


def pillow_resize(pixels: np.ndarray, size: int, extent=None) -> np.ndarray:
    box = None if extent is None else (0.0, 0.0, *extent)
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(pixels[..., c], dtype=np.float32))
                                .resize((size, size), Image.Resampling.BILINEAR, box=box))
                     for c in range(pixels.shape[-1])], axis=-1)


@pytest.mark.parametrize(("height", "width", "size", "extent"), [
    (300, 300, 224, None), (32, 48, 224, None), (1000, 700, 224, None), (224, 224, 224, None),
    (225, 900, 224, None), (1, 1, 224, None), (5000, 3, 64, None), (300, 300, 64, None),
    (251, 250, 224, (249.5, 250.625)), (1001, 897, 224, (896.125, 1000.875)),
])
def test_matches_pillows_float_resize(height, width, size, extent):
    pixels = np.random.default_rng(height * width).integers(0, 256, (height, width, 3), dtype=np.uint8)

    resized = resize_bilinear(pixels, size, extent)

    assert resized.dtype == np.float32 and resized.shape == (size, size, 3)
    np.testing.assert_allclose(resized, pillow_resize(pixels, size, extent), rtol=0, atol=1e-3)


def test_each_output_pixel_is_a_weighted_mean_of_a_few_neighbours():
    weights = resampling_weights(300, 224)

    np.testing.assert_allclose(np.asarray(weights.sum(axis=1)).ravel(), 1.0, atol=1e-6)
    assert np.diff(weights.indptr).max() <= 4  # the triangle widened by 300 / 224 spans at most 4 inputs
    assert (weights.data > 0).all()


def test_a_flat_image_stays_flat_and_channels_do_not_mix():
    pixels = np.zeros((120, 90, 3), dtype=np.uint8)
    pixels[..., 1] = 200

    resized = resize_bilinear(pixels, 64)

    np.testing.assert_allclose(resized[..., 1], 200.0, atol=1e-3)
    assert not resized[..., [0, 2]].any()


def test_an_empty_side_is_refused():
    with pytest.raises(ValueError, match="positive sizes"):
        resampling_weights(0, 224)
