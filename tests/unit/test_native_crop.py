"""Random native crops: every training image becomes an exact window of itself at its own resolution, in
every alignment with the pixel grid, and only when the crop fit asks for it."""
import dataclasses

import numpy as np
import tensorflow as tf

from deepfake_detector.components.model.native_crop import RandomNativeCrop, build_random_crop, chain
from deepfake_detector.config.entities import AugmentationConfig

SIZE = 8


def coordinates_image(height: int, width: int) -> tf.Tensor:
    """Each pixel holds its own (row, column), so a crop tells where it was taken."""
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    return tf.constant(np.stack([rows, columns, np.zeros_like(rows)], axis=-1))


def test_the_crop_is_an_exact_window_and_takes_both_grid_phases():
    crop = RandomNativeCrop(SIZE, seed=0)
    image = coordinates_image(20, 15)
    tops, lefts = set(), set()
    for _ in range(40):
        window, label = crop(image, tf.constant(1.0))
        window = window.numpy()
        top, left = int(window[0, 0, 0]), int(window[0, 0, 1])
        np.testing.assert_array_equal(window, image.numpy()[top:top + SIZE, left:left + SIZE])
        assert float(label) == 1.0
        tops.add(top)
        lefts.add(left)
    assert max(tops) <= 20 - SIZE and max(lefts) <= 15 - SIZE
    assert {top % 2 for top in tops} == {0, 1} and {left % 2 for left in lefts} == {0, 1}


def test_an_image_smaller_than_the_crop_passes_unchanged():
    image = coordinates_image(SIZE - 1, 30)
    window, _ = RandomNativeCrop(SIZE, seed=0)(image, tf.constant(0.0))
    np.testing.assert_array_equal(window.numpy(), image.numpy())


def test_it_runs_only_with_the_crop_fit_and_augmentation_on():
    config = AugmentationConfig()
    assert isinstance(build_random_crop(config, SIZE, 0, "crop"), RandomNativeCrop)
    assert build_random_crop(config, SIZE, 0, "resize") is None
    assert build_random_crop(dataclasses.replace(config, random_crop=False), SIZE, 0, "crop") is None
    assert build_random_crop(dataclasses.replace(config, enabled=False), SIZE, 0, "crop") is None


def test_chain_applies_transforms_in_order_and_skips_missing_ones():
    def add_one(image, label):
        return image + 1.0, label

    def double(image, label):
        return image * 2.0, label + 1.0

    image, label = chain(add_one, None, double)(tf.zeros((2, 2, 3)), tf.constant(0.0))
    np.testing.assert_array_equal(image.numpy(), np.full((2, 2, 3), 2.0))
    assert float(label) == 1.0
    assert chain(None, None) is None
