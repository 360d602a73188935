"""Re-synthesized reals: which images become fakes, what the re-synthesis does to them, and how
the class weights follow."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from deepfake_detector.components.model.resynthesis import (
    Resynthesis,
    ResynthesisSettings,
    build_resynthesis,
)
from deepfake_detector.components.model.trainer import balanced_class_weight
from deepfake_detector.config.entities import AugmentationConfig

ALWAYS_WHOLE_CLEAN = ResynthesisSettings(probability=1.0, region_probability=0.0, noise_probability=0.0)


def camera_like(size: int = 96, seed: int = 0) -> tf.Tensor:
    """A smooth gradient plus per-pixel noise: detail up to the sampling limit, as a photo has."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(40, 200, size, dtype=np.float32)
    image = ramp[None, :, None] + ramp[:, None, None] * 0.3 + rng.normal(0, 8, (size, size, 3))
    return tf.constant(np.clip(image, 0, 255), tf.float32)


def high_band_energy(image: np.ndarray) -> float:
    """Mean squared difference between horizontal neighbours: what up-sampling smooths away."""
    return float(np.mean(np.diff(np.asarray(image, np.float64), axis=1) ** 2))


def test_a_real_turned_fake_is_labeled_fake_and_keeps_its_size():
    image = camera_like(size=90)
    turned, label = Resynthesis(ALWAYS_WHOLE_CLEAN, image_size=224, seed=1)(image, tf.constant(0.0))
    assert float(label) == 1.0
    assert turned.shape == image.shape
    assert float(tf.reduce_min(turned)) >= 0.0 and float(tf.reduce_max(turned)) <= 255.0


def test_fakes_pass_unchanged():
    image = camera_like()
    kept, label = Resynthesis(ALWAYS_WHOLE_CLEAN, image_size=224, seed=1)(image, tf.constant(1.0))
    assert float(label) == 1.0
    np.testing.assert_array_equal(kept.numpy(), image.numpy())


def test_resynthesis_removes_the_detail_of_the_lost_resolution():
    image = camera_like()
    resynthesized, _ = Resynthesis(ALWAYS_WHOLE_CLEAN, image_size=224, seed=3)(image, tf.constant(0.0))
    assert high_band_energy(resynthesized) < 0.6 * high_band_energy(image)


def test_noise_added_afterwards_brings_high_band_energy_back():
    """So that a clean high band cannot be what tells the classes apart."""
    image = camera_like()
    clean, _ = Resynthesis(ALWAYS_WHOLE_CLEAN, image_size=224, seed=3)(image, tf.constant(0.0))
    noisy, _ = Resynthesis(dataclasses.replace(ALWAYS_WHOLE_CLEAN, noise_probability=1.0), image_size=224, seed=3)(
        image, tf.constant(0.0))
    assert high_band_energy(noisy) > 1.2 * high_band_energy(clean)


def test_region_resynthesis_leaves_the_borders_as_they_were():
    image = camera_like(size=128)
    regional = ResynthesisSettings(probability=1.0, region_probability=1.0, noise_probability=0.0)
    pasted, _ = Resynthesis(regional, image_size=224, seed=5)(image, tf.constant(0.0))
    border = np.ones((128, 128), dtype=bool)
    border[8:-8, 8:-8] = False  # the region never reaches the outer 8 pixels: center +-0.4, half axes <= 0.6
    changed = np.abs(pasted.numpy() - image.numpy()).mean(axis=-1)
    inside = changed[48:80, 48:80].mean()
    assert changed[border].mean() < inside  # only the JPEG re-save touches the borders


def test_reals_turn_fake_at_the_configured_rate():
    transform = Resynthesis(ResynthesisSettings(probability=0.3, region_probability=0.5, noise_probability=0.5),
                            image_size=224, seed=9)
    image = camera_like(size=32)
    labels = [float(transform(image, tf.constant(0.0))[1]) for _ in range(200)]
    assert 0.2 < np.mean(labels) < 0.4


@pytest.mark.parametrize("changes", [dict(resynthesis_probability=0.0), dict(enabled=False)])
def test_off_means_no_transform(changes):
    config = dataclasses.replace(AugmentationConfig(resynthesis_probability=0.5), **changes)
    assert build_resynthesis(config, image_size=224, seed=0) is None


def test_class_weights_follow_the_reals_that_become_fakes():
    labels = [1] * 50 + [0] * 50
    assert balanced_class_weight(labels) == {0: 1.0, 1: 1.0}
    weights = balanced_class_weight(labels, 0.5)  # an epoch sees 25 reals and 75 fakes on average
    assert weights[0] == pytest.approx(100 / 50)
    assert weights[1] == pytest.approx(100 / 150)
