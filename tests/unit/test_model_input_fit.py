"""The model input "fit": a center crop at native resolution or a resize, the same in the TensorFlow
pipeline (training, evaluation) and the numpy/Pillow runtime (serving)."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from deepfake_detector.components.data.datasets import FITS, build_dataset, fit_tensor_for_model
from deepfake_detector.inference import fit_for_model
from deepfake_detector.inference.images import decode_image, load_image
from tests.unit.decode_fixtures import RESIZE_TOLERANCE, training_fit
from tests.unit.inference_fixtures import encode, photo

SIZE = 64
SHAPES = [(64, 64), (65, 64), (301, 301), (67, 130), (130, 67), (63, 100), (100, 63), (40, 40)]


def center(image: np.ndarray, size: int = SIZE) -> np.ndarray:
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    return image[top:top + size, left:left + size]


@pytest.mark.parametrize(("height", "width"), SHAPES)
def test_both_twins_give_the_same_crop(height, width):
    image = photo(height, width, seed=width)
    served = fit_for_model(image, SIZE, "crop")
    trained = fit_tensor_for_model(tf.constant(image), SIZE, "crop").numpy()
    assert served.shape == trained.shape == (SIZE, SIZE, 3) and served.dtype == trained.dtype == np.float32
    if min(height, width) >= SIZE:
        np.testing.assert_array_equal(served, trained)
    else:
        np.testing.assert_allclose(served, trained, rtol=0, atol=RESIZE_TOLERANCE)


@pytest.mark.parametrize(("height", "width"), SHAPES)
def test_both_twins_give_the_same_resize(height, width):
    image = photo(height, width, seed=height)
    np.testing.assert_allclose(fit_for_model(image, SIZE, "resize"),
                               fit_tensor_for_model(tf.constant(image), SIZE, "resize").numpy(),
                               rtol=0, atol=RESIZE_TOLERANCE)


@pytest.mark.parametrize(("height", "width"), [(301, 301), (64, 65), (96, 200)])
def test_crop_keeps_the_native_center_pixels(height, width):
    image = photo(height, width)
    np.testing.assert_array_equal(fit_for_model(image, SIZE, "crop"), center(image))


def test_crop_of_a_smaller_image_resizes_the_whole_image():
    image = photo(80, 50)
    np.testing.assert_array_equal(fit_for_model(image, SIZE, "crop"), fit_for_model(image, SIZE, "resize"))


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
@pytest.mark.parametrize(("height", "width"), [(301, 300), (64, 64), (48, 90)])
def test_files_crop_alike_in_serving_and_training(image_format, height, width):
    data = encode(photo(height, width, seed=7), image_format, quality=90)
    served = load_image(data, SIZE, fit="crop")
    np.testing.assert_array_equal(served, fit_for_model(decode_image(data), SIZE, "crop"))
    np.testing.assert_allclose(served, training_fit(data, SIZE, "crop"), rtol=0,
                               atol=0 if min(height, width) >= SIZE else RESIZE_TOLERANCE)


@pytest.mark.parametrize("fit", FITS)
@pytest.mark.parametrize("orientation", range(1, 9))
def test_upright_fit_matches_fitting_the_exif_transposed_image(fit, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(photo(91, 70, seed=orientation), "JPEG", quality=95, exif=exif.tobytes())
    stored = Image.fromarray(decode_image(data))
    stored.getexif()[0x0112] = orientation
    upright = np.asarray(ImageOps.exif_transpose(stored))
    expected = fit_for_model(upright, SIZE, fit)
    np.testing.assert_allclose(load_image(data, SIZE, fit=fit, upright=True), expected, rtol=0,
                               atol=0 if fit == "crop" else RESIZE_TOLERANCE)


def test_dataset_applies_the_fit_on_both_paths(tmp_path):
    images = [photo(100, 77, seed=1), photo(70, 130, seed=2)]
    paths = []
    for index, image in enumerate(images):
        paths.append(str(tmp_path / f"{index}.png"))
        Image.fromarray(image).save(paths[-1])
    plain = next(iter(build_dataset(paths, [0, 1], SIZE, 2, fit="crop")))[0].numpy()
    transformed = next(iter(build_dataset(paths, [0, 1], SIZE, 2, fit="crop",
                                          native_transform=lambda image, label: (image, label))))[0].numpy()
    expected = np.stack([center(image) for image in images]).astype(np.float32)
    np.testing.assert_array_equal(plain, expected)
    np.testing.assert_array_equal(transformed, expected)


@pytest.mark.parametrize("call", [
    lambda: fit_for_model(photo(70, 70), SIZE, "zoom"),
    lambda: fit_tensor_for_model(tf.constant(photo(70, 70)), SIZE, "zoom"),
    lambda: load_image(encode(photo(70, 70), "PNG"), SIZE, fit="zoom"),
    lambda: build_dataset(["a.png"], [0], SIZE, 1, fit="zoom"),
])
def test_unknown_fit_is_refused_naming_the_choices(call):
    with pytest.raises(ValueError, match="unknown fit 'zoom': expected one of 'crop', 'resize'"):
        call()
