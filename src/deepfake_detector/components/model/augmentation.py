"""Training-time augmentation: Keras' geometric and photometric layers plus forensic ones.

The forensic layers imitate what happens to faces on the way to a detector (re-compression,
blur, re-scaling) so it cannot lean on pristine pixels; they call the ops in perturbations.py, the
same ones the robustness evaluation measures the detector against. Everything works on float batches in
[0, 255], is active only with training=True, and runs in the tf.data pipeline; it is never
saved inside the model.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from deepfake_detector.components.data import perturbations
from deepfake_detector.components.data.perturbations import PIXEL_RANGE
from deepfake_detector.config.entities import AugmentationConfig

BLUR_SIGMA_MIN = 0.5


class RandomPerImage(keras.layers.Layer):
    """Base for forensic layers: each image is transformed with `probability` and a parameter
    drawn uniformly from [low, high); images that are not picked pass through unchanged."""

    def __init__(self, probability: float, low: float, high: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.probability = float(probability)
        self.low, self.high = float(low), float(high)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def transform(self, image: tf.Tensor, parameter: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def call(self, images, training=None):
        if not training or self.probability <= 0:
            return images
        images = tf.convert_to_tensor(images, dtype=tf.float32)
        batch = tf.shape(images)[0]
        picked = keras.random.uniform((batch,), seed=self.seed_generator) < self.probability
        parameters = keras.random.uniform((batch,), minval=self.low, maxval=self.high,
                                          seed=self.seed_generator)

        def one(args):
            image, is_picked, parameter = args
            changed = tf.cond(is_picked, lambda: self.transform(image, parameter), lambda: image)
            return tf.clip_by_value(tf.ensure_shape(changed, image.shape), *PIXEL_RANGE)

        return tf.map_fn(one, (images, picked, parameters), fn_output_signature=tf.float32)

    def compute_output_shape(self, input_shape):
        return input_shape


class RandomJpegQuality(RandomPerImage):
    """Re-encode as JPEG at a random quality in [quality_min, quality_max]."""

    def __init__(self, probability: float, quality_min: int, quality_max: int, seed: int | None = None,
                 **kwargs):
        super().__init__(probability, quality_min, quality_max + 1, seed=seed, **kwargs)
        self.quality_range = (int(quality_min), int(quality_max))

    def transform(self, image, parameter):
        quality = tf.clip_by_value(tf.cast(tf.floor(parameter), tf.int32), *self.quality_range)
        return perturbations.jpeg(image, quality)


class RandomGaussianBlur(RandomPerImage):
    """Blur with a Gaussian of random sigma in [BLUR_SIGMA_MIN, sigma_max] (reflected borders)."""

    def __init__(self, probability: float, sigma_max: float = 1.5, seed: int | None = None, **kwargs):
        super().__init__(probability, BLUR_SIGMA_MIN, max(float(sigma_max), BLUR_SIGMA_MIN), seed=seed, **kwargs)

    def transform(self, image, parameter):
        return perturbations.gaussian_blur(image, parameter)


class RandomRescale(RandomPerImage):
    """Down-scale by a random factor in [min_factor, 1], then back up to the original size."""

    def __init__(self, probability: float, min_factor: float, seed: int | None = None, **kwargs):
        super().__init__(probability, min_factor, 1.0, seed=seed, **kwargs)

    def transform(self, image, parameter):
        return perturbations.rescale(image, parameter)


class ClipPixels(keras.layers.Layer):
    """Keep pixels in [0, 255] whatever the layers before did (identity on valid input)."""

    def call(self, images):
        return tf.clip_by_value(images, *PIXEL_RANGE)


def build_augmentation(config: AugmentationConfig, image_size: int, seed: int) -> keras.Sequential | None:
    """The augmentation model for training batches, or None when augmentation is disabled.

    Geometry first, then color, then the forensic degradations, with JPEG last as on the way
    to a social network. A factor or probability of 0 leaves its layer out.
    """
    if not config.enabled:
        return None
    seeds = iter(range(seed, seed + 100))  # one seed per layer: a shared one correlates their draws
    value_range = PIXEL_RANGE
    layers = []
    if config.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=next(seeds), name="flip"))
    if config.rotation > 0:
        layers.append(keras.layers.RandomRotation(config.rotation, seed=next(seeds), name="rotation"))
    if config.zoom > 0:
        layers.append(keras.layers.RandomZoom((-config.zoom, config.zoom), seed=next(seeds), name="zoom"))
    if config.contrast > 0:
        layers.append(keras.layers.RandomContrast(config.contrast, value_range=value_range, seed=next(seeds),
                                                  name="contrast"))
    if config.brightness > 0:
        layers.append(keras.layers.RandomBrightness(config.brightness, value_range=value_range,
                                                    seed=next(seeds), name="brightness"))
    if config.blur_probability > 0:
        layers.append(RandomGaussianBlur(config.blur_probability, config.blur_sigma_max, seed=next(seeds),
                                         name="blur"))
    if config.rescale_probability > 0:
        layers.append(RandomRescale(config.rescale_probability, config.rescale_min_factor, seed=next(seeds),
                                    name="rescale"))
    if config.jpeg_probability > 0:
        layers.append(RandomJpegQuality(config.jpeg_probability, config.jpeg_quality_min,
                                        config.jpeg_quality_max, seed=next(seeds), name="jpeg"))
    return keras.Sequential([keras.Input(shape=(image_size, image_size, 3)), *layers,
                             ClipPixels(name="clip")], name="augmentation")
