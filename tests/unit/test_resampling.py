"""The sparse antialiased bilinear resize gives Pillow's BILINEAR resize of float planes (the kernel the
TensorFlow parity tests were first written against), for shrinking, enlarging, odd shapes and the
fractional box of a reduced JPEG decode (at either edge, once the image is turned upright)."""
import io

import numpy as np
import pytest
from PIL import Image

from deepfake_detector.inference.images import load_model_input, upright_transpose
from deepfake_detector.inference.resampling import resampling_weights, resize_bilinear


def pillow_resize(pixels: np.ndarray, size: int, box=None) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(pixels[..., c], dtype=np.float32))
                                .resize((size, size), Image.Resampling.BILINEAR, box=box))
                     for c in range(pixels.shape[-1])], axis=-1)


@pytest.mark.parametrize(("height", "width", "size", "box"), [
    (300, 300, 224, None), (32, 48, 224, None), (1000, 700, 224, None), (224, 224, 224, None),
    (225, 900, 224, None), (1, 1, 224, None), (5000, 3, 64, None), (300, 300, 64, None),
    (251, 250, 224, (0.0, 0.0, 249.5, 250.625)), (1001, 897, 224, (0.0, 0.0, 896.125, 1000.875)),
    (1001, 897, 224, (0.875, 0.125, 897.0, 1001.0)),
])
def test_matches_pillows_float_resize(height, width, size, box):
    pixels = np.random.default_rng(height * width).integers(0, 256, (height, width, 3), dtype=np.uint8)

    resized = resize_bilinear(pixels, size, box)

    assert resized.dtype == np.float32 and resized.shape == (size, size, 3)
    np.testing.assert_allclose(resized, pillow_resize(pixels, size, box), rtol=0, atol=1e-3)


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


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_large_turned_jpeg_is_resized_over_the_box_its_reduced_decode_covers(orientation):
    """A reduced decode's partial last column and row go wherever turning the image upright takes them; the
    model input equals resizing the stored pixels over their extent and then turning the result."""
    y, x = np.mgrid[0:1803, 0:1795].astype(np.float32)  # odd sides: a half-scale decode ends in half pixels
    stored = np.stack([127 + 120 * np.sin(x / 37 + y / 91), 127 + 120 * np.cos(y / 23), (x + y) % 256],
                      axis=-1).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, "JPEG", quality=95, exif=exif.tobytes())

    served = load_model_input(buffer.getvalue(), 224, fit="resize", upright=True)

    with Image.open(io.BytesIO(buffer.getvalue())) as image:
        image.draft("RGB", (1795 // 2, 1803 // 2))
        reduced = np.asarray(image.convert("RGB"))
    assert reduced.shape[:2] == (902, 898)  # a half-scale decode, at least 4 x 224 on each side
    expected = np.clip(pillow_resize(reduced, 224, (0.0, 0.0, 1795 / 2, 1803 / 2)), 0, 255)
    transpose = upright_transpose(orientation)
    if transpose is not None:
        expected = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(expected[..., c])).transpose(transpose))
                             for c in range(3)], axis=-1)
    assert (served.width, served.height) == ((1803, 1795) if orientation >= 5 else (1795, 1803))
    np.testing.assert_allclose(served.pixels, expected, rtol=0, atol=1e-3)
