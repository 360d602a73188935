"""Perturbations: each degrades an image the way its docstring says, at any size, inside tf.data,
and augmentation's forensic layers are the very same ops."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from deepfake_detector.components.data import perturbations
from deepfake_detector.components.data.perturbations import (
    DEFAULT_SEVERITIES,
    PERTURBATIONS,
    apply_perturbation,
)
from deepfake_detector.components.model.augmentation import RandomGaussianBlur, RandomJpegQuality, RandomRescale

SIZE = 96


def textured(size: int = SIZE) -> np.ndarray:
    """Color gradients plus luminance texture (seeded noise and a fine sine pattern), in range."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size].astype("float64")
    luminance = rng.normal(0, 12, (size, size)) + 20 * np.sin(x / 3.0) * np.cos(y / 5.0)
    colors = np.stack([x * 1.5 + 40, y * 1.5 + 30, (x + y) * 0.7 + 50], axis=-1)
    return np.clip(colors + luminance[..., None], 0, 255).astype("float32")


def psnr(changed, original) -> float:
    error = np.mean((np.asarray(changed, np.float64) - np.asarray(original, np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / error))


def high_frequency_energy(image) -> float:
    image = np.asarray(image, np.float64)
    return float(np.mean(np.diff(image, axis=0) ** 2) + np.mean(np.diff(image, axis=1) ** 2))


def test_catalogue_covers_the_default_severities_with_labels():
    assert list(PERTURBATIONS) == ["jpeg", "rescale", "blur", "noise", "crop", "brightness_contrast"]
    assert set(DEFAULT_SEVERITIES) == set(PERTURBATIONS)
    assert PERTURBATIONS["jpeg"].mild_to_harsh([30, 90, 50]) == [90, 50, 30]
    assert PERTURBATIONS["blur"].mild_to_harsh([2.0, 0.5]) == [0.5, 2.0]
    for name, severities in DEFAULT_SEVERITIES.items():
        assert PERTURBATIONS[name].mild_to_harsh(severities) == list(severities), name


def test_lower_jpeg_quality_loses_more():
    image = textured()
    outputs = {q: perturbations.jpeg(image, q).numpy() for q in (90, 70, 50, 30)}
    quality = [psnr(outputs[q], image) for q in (90, 70, 50, 30)]
    assert 30 < quality[0] < 45 and 20 < quality[-1] < 30
    assert quality == sorted(quality, reverse=True)
    png_bytes = {q: len(tf.io.encode_png(tf.cast(outputs[q], tf.uint8)).numpy()) for q in (90, 30)}
    assert png_bytes[30] < png_bytes[90]  # less detail survives quality 30


def test_augmentation_jpeg_layer_is_the_shared_op():
    images = np.stack([textured(), textured()[::-1]])
    layer = RandomJpegQuality(1.0, 40, 40, seed=3)
    np.testing.assert_array_equal(layer(images, training=True).numpy(),
                                  np.stack([perturbations.jpeg(image, 40).numpy() for image in images]))


def test_augmentation_blur_and_rescale_layers_use_the_shared_ops(monkeypatch):
    calls = []

    def spy(name):
        original = getattr(perturbations, name)

        def recorded(image, parameter):
            calls.append(name)
            return original(image, parameter)
        monkeypatch.setattr(perturbations, name, recorded)

    spy("gaussian_blur")
    spy("rescale")
    images = textured(32)[None]
    RandomGaussianBlur(1.0, seed=1)(images, training=True)
    RandomRescale(1.0, 0.5, seed=1)(images, training=True)
    assert set(calls) == {"gaussian_blur", "rescale"}


def test_stronger_rescale_loses_more_and_keeps_the_shape():
    image = textured()[:, :71]
    mild, harsh = (perturbations.rescale(image, factor).numpy() for factor in (0.75, 0.25))
    assert mild.shape == harsh.shape == image.shape
    assert psnr(harsh, image) < psnr(mild, image) - 1.0


def test_blur_removes_more_detail_with_sigma_and_keeps_the_mean():
    image = textured()
    energy = [high_frequency_energy(image)]
    for sigma in (0.5, 1.0, 2.0):
        blurred = perturbations.gaussian_blur(image, sigma).numpy()
        assert blurred.shape == image.shape
        assert blurred.mean() == pytest.approx(image.mean(), abs=0.5)
        energy.append(high_frequency_energy(blurred))
    assert energy == sorted(energy, reverse=True) and energy[-1] < energy[0] / 20


def test_blur_with_sigma_zero_changes_nothing_and_small_images_survive():
    image = textured(8)
    np.testing.assert_allclose(perturbations.gaussian_blur(image, 0.0).numpy(), image, atol=1e-3)
    assert perturbations.gaussian_blur(image[:3, :2], 2.0).shape == (3, 2, 3)


@pytest.mark.parametrize("std", [2.0, 10.0])
def test_noise_has_the_requested_spread(std):
    gray = np.full((SIZE, SIZE, 3), 128.0, np.float32)
    noise = perturbations.gaussian_noise(gray, std, seed=7).numpy() - gray
    assert noise.std() == pytest.approx(std, rel=0.05)
    assert abs(noise.mean()) < 0.1 * std


def test_noise_repeats_for_a_seed_and_differs_for_another():
    image = textured(32)
    first, again = (perturbations.gaussian_noise(image, 5.0, seed=(1, 4)).numpy() for _ in range(2))
    other = perturbations.gaussian_noise(image, 5.0, seed=(1, 5)).numpy()
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).mean() > 1.0


def test_center_crop_drops_the_border():
    image = np.zeros((SIZE, SIZE, 3), np.float32)
    image[..., 0] = 255.0  # a red frame around ...
    image[12:-12, 12:-12] = textured()[12:-12, 12:-12] * [0.0, 1.0, 1.0]  # ... a picture with no red
    cropped = perturbations.center_crop(image, 0.5).numpy()
    assert cropped.shape == image.shape
    assert cropped[..., 0].max() == 0.0
    assert image[..., 0].max() == 255.0


def test_brightness_contrast_shifts_the_mean_and_flattens_as_documented():
    image = textured() * 0.3 + 60  # far from both ends, so nothing is clipped
    for amount in (0.1, 0.3):
        changed = perturbations.brightness_contrast(image, amount).numpy()
        assert changed.mean() - image.mean() == pytest.approx(255 * amount, abs=0.01)
        assert changed.std() == pytest.approx(image.std() * (1 - amount), rel=1e-3)
    assert perturbations.brightness_contrast(textured(), 0.3).numpy().max() <= 255.0


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_every_perturbation_runs_in_tf_data_on_any_size(name):
    severity = DEFAULT_SEVERITIES[name][-1]
    shapes = [(40, 40, 3), (33, 57, 3)]
    dataset = tf.data.Dataset.from_generator(lambda: (textured(64)[:h, :w] for h, w, _ in shapes),
                                             output_signature=tf.TensorSpec((None, None, 3), tf.float32))
    dataset = dataset.enumerate().map(
        lambda index, image: apply_perturbation(name, image, severity, seed=tf.stack([index, index])))
    outputs = list(dataset.as_numpy_iterator())
    assert [o.shape for o in outputs] == shapes
    for output, (h, w, _) in zip(outputs, shapes, strict=True):
        assert output.dtype == np.float32 and output.min() >= 0.0 and output.max() <= 255.0
        assert not np.array_equal(output, textured(64)[:h, :w])


def test_unknown_perturbation_names_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown perturbation 'jpg'.*jpeg, rescale, blur, noise, crop"):
        apply_perturbation("jpg", textured(8), 50)


def test_out_of_range_severity_is_refused():
    with pytest.raises(ValueError, match=r"'jpeg'.*quality 150.*\[0, 100\]"):
        apply_perturbation("jpeg", textured(8), 150)


def test_noise_without_a_seed_is_refused():
    with pytest.raises(ValueError, match="noise.*seed"):
        apply_perturbation("noise", textured(8), 5.0)
