"""Random native-resolution crops for training with model.input_fit crop.

Serving scores the center square of an image, and where that square starts relative to the generator's
pixel grid depends on the image's size: an odd margin shifts every 2x2 cell by one pixel. Training on the
center square of same-sized images would teach one alignment only; a random square teaches all of them, and
shows the model more of each image (Wang et al., CVPR 2020, also train on random crops).

Like re-synthesis, it runs in the tf.data pipeline on each image at its own size (a native transform), never
inside the saved model.
"""
from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from deepfake_detector.config.entities import AugmentationConfig

NativeTransform = Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]


class RandomNativeCrop:
    """Callable on one (image, label): a random image_size square of the image, when both sides are at least
    that long; a smaller image passes unchanged (the fit then resizes it, as serving does)."""

    def __init__(self, image_size: int, seed: int | None = None) -> None:
        self.image_size = int(image_size)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _offset(self, room):
        """A uniform integer in [0, room]."""
        draw = keras.random.uniform((), seed=self.seed_generator)
        return tf.minimum(tf.cast(draw * tf.cast(room + 1, tf.float32), tf.int32), room)

    def __call__(self, image, label):
        size = self.image_size
        height, width = tf.shape(image)[0], tf.shape(image)[1]

        def crop():
            top, left = self._offset(height - size), self._offset(width - size)
            return image[top:top + size, left:left + size]

        return tf.cond((height >= size) & (width >= size), crop, lambda: image), label


def build_random_crop(config: AugmentationConfig, image_size: int, seed: int,
                      input_fit: str) -> RandomNativeCrop | None:
    """The crop train.augment asks for, or None (off, augmentation off, or the resize fit)."""
    if not config.enabled or not config.random_crop or input_fit != "crop":
        return None
    return RandomNativeCrop(image_size, seed=seed + 2000)  # apart from the other augmentations' seeds


def chain(*transforms: NativeTransform | None) -> NativeTransform | None:
    """The given native transforms applied in order (None ones skipped); None when there is none."""
    steps = [transform for transform in transforms if transform is not None]
    if not steps:
        return None

    def apply(image, label):
        for step in steps:
            image, label = step(image, label)
        return image, label

    return apply
