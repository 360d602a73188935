"""Augmentation: shape and pixel range kept, identity at inference, forensic layers really act."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from deepfake_detector.components.model.augmentation import (
    RandomGaussianBlur,
    RandomJpegQuality,
    RandomRescale,
    build_augmentation,
)
from deepfake_detector.config.entities import AugmentationConfig

SIZE = 32
EVERYTHING_ON = AugmentationConfig(
    enabled=True, flip=True, rotation=0.03, zoom=0.05, contrast=0.3, brightness=0.3, jpeg_probability=1.0,
    jpeg_quality_min=40, jpeg_quality_max=60, blur_probability=0.5, rescale_probability=0.5,
    rescale_min_factor=0.5)


def batch(count: int = 8) -> np.ndarray:
    """Noise with pure black and white pixels, so clipping at both ends would show."""
    images = np.random.default_rng(0).uniform(0, 255, (count, SIZE, SIZE, 3)).astype("float32")
    images[:, :4] = 0.0
    images[:, -4:] = 255.0
    return images


def test_augmentation_keeps_shape_dtype_and_pixel_range():
    augmented = build_augmentation(EVERYTHING_ON, SIZE, seed=1)(batch(), training=True).numpy()
    assert augmented.shape == (8, SIZE, SIZE, 3)
    assert augmented.dtype == np.float32
    assert augmented.min() >= 0.0 and augmented.max() <= 255.0


def test_augmentation_is_identity_at_inference():
    images = batch()
    np.testing.assert_array_equal(build_augmentation(EVERYTHING_ON, SIZE, seed=1)(images, training=False), images)


def test_disabled_augmentation_is_none():
    assert build_augmentation(dataclasses.replace(EVERYTHING_ON, enabled=False), SIZE, seed=1) is None


def test_augmentation_draws_anew_for_each_pass_over_a_dataset():
    augment = build_augmentation(EVERYTHING_ON, SIZE, seed=1)
    dataset = tf.data.Dataset.from_tensor_slices(batch()).batch(4).map(lambda x: augment(x, training=True))
    first, second = (np.concatenate(list(dataset.as_numpy_iterator())) for _ in range(2))
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("layer", [
    RandomJpegQuality(1.0, 30, 50, seed=1),
    RandomGaussianBlur(1.0, seed=1),
    RandomRescale(1.0, 0.5, seed=1),
], ids=["jpeg", "blur", "rescale"])
def test_forensic_layer_changes_every_image_it_picks(layer):
    images = batch(4)
    changed = layer(images, training=True).numpy()
    assert all(np.abs(after - before).mean() > 1.0 for after, before in zip(changed, images, strict=True))
    np.testing.assert_array_equal(layer(images, training=False), images)


def test_forensic_layer_picks_images_with_its_probability():
    images = batch(64)
    changed = RandomJpegQuality(0.5, 30, 50, seed=1)(images, training=True).numpy()
    picked = sum(not np.array_equal(after, before) for after, before in zip(changed, images, strict=True))
    assert 16 <= picked <= 48
