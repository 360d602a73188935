"""Re-synthesized reals as extra fakes: training the detector on the principle, not on one generator.

A detector trained on one generator's fakes learns that generator's fingerprint (a checkerboard
of one period) and calls every other generator's output real. What all of them share is that
the image, or a region pasted into it, was synthesized at a lower resolution and enlarged. So,
in the spirit of AutoGAN (Zhang et al., WIFS 2019) and self-blended images (Shiohara and
Yamasaki, CVPR 2022), a share of the real training images is turned into fakes: re-synthesized
at a random lower resolution and enlarged by a random interpolating up-sampler, over the whole
image or inside an elliptical region under a feathered mask (as a face swap pastes its face),
for some with camera-like noise added afterwards so that "no noise" cannot become the label,
and saved as JPEG again like every other image of the set.

It works on each image at its own resolution, before the fit to the model's input (where such
traces are born, and before a resize would blur them), in the tf.data pipeline; it is never
saved inside the model. The class weights account for the reals it turns into fakes.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf

from deepfake_detector.components.data.perturbations import PIXEL_RANGE
from deepfake_detector.config.entities import AugmentationConfig

# tf.image.resize methods a generator's up-sampling can look like (no checkerboard among them:
# the transposed-convolution case is what the real training fakes already show).
UPSAMPLERS = ("nearest", "bilinear", "bicubic", "lanczos3", "mitchellcubic")
# The synthesized resolution, as a share of the side the model sees (the image's own with model.input_fit crop;
# with resize, the smaller of the image's and model.image_size): above about 0.75 the trace is too faint (and a
# resize to the model's input would hide it), and the "fake" would be a real with a wrong label.
SCALE_RANGE = (0.33, 0.7)
NOISE_STD_RANGE = (1.0, 6.0)     # camera-like noise added afterwards, 0-255 scale
JPEG_QUALITY_RANGE = (75, 95)    # how the fake is saved, like the images around it
REGION_CENTER = 0.4              # region center within +-this of the image center (in [-1, 1] units)
REGION_HALF_HEIGHT = (0.25, 0.6)
REGION_HALF_WIDTH = (0.2, 0.5)
FEATHER_RANGE = (0.05, 0.3)      # width of the mask's soft edge, as a share of the region


@dataclass(frozen=True)
class ResynthesisSettings:
    probability: float         # share of real training images turned into re-synthesized fakes
    region_probability: float  # of those, the share re-synthesized in a region only (a face swap)
    noise_probability: float   # of those, the share with camera-like noise added afterwards


class Resynthesis:
    """Callable on one (image, label) at the image's own size, float32 in [0, 255]: a real image is
    turned into a fake (label 1) with `probability`; fakes and the other reals pass unchanged."""

    def __init__(self, settings: ResynthesisSettings, image_size: int, seed: int | None = None,
                 input_fit: str = "crop") -> None:
        self.settings = settings
        self.image_size = int(image_size)
        self.input_fit = input_fit
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _uniform(self, shape=(), low: float = 0.0, high: float = 1.0):
        return keras.random.uniform(shape, minval=low, maxval=high, seed=self.seed_generator)

    def __call__(self, image, label):
        image = tf.convert_to_tensor(image, tf.float32)
        turn = (label < 0.5) & (self._uniform() < self.settings.probability)
        # Only the images turned pay for the re-synthesis (a resample, a blend, a JPEG round trip).
        return tf.cond(turn, lambda: (self.resynthesize(image), tf.ones_like(label)), lambda: (image, label))

    def resynthesize(self, image):
        """The image re-synthesized: resampled, pasted whole or in a region, maybe noisy, re-saved."""
        shape = tf.shape(image)
        resampled = self._resample(image, shape[0], shape[1])
        pasted = self._paste(image, resampled, shape[0], shape[1])
        noisy = tf.cond(self._uniform() < self.settings.noise_probability,
                        lambda: self._add_noise(pasted), lambda: pasted)
        quality = tf.cast(self._uniform((), JPEG_QUALITY_RANGE[0], JPEG_QUALITY_RANGE[1] + 1), tf.int32)
        saved = tf.image.adjust_jpeg_quality(tf.clip_by_value(noisy, *PIXEL_RANGE) / 255.0,
                                             tf.minimum(quality, JPEG_QUALITY_RANGE[1]))
        return tf.reshape(saved * 255.0, shape)

    def _resample(self, image, height, width):
        """Down to a random share of the side the model sees (area average), then up with a random method."""
        sides = tf.cast(tf.stack([height, width]), tf.float32)
        if self.input_fit == "crop":
            seen = 1.0  # the model sees a native-resolution crop (or a smaller image enlarged)
        else:
            seen = tf.minimum(1.0, self.image_size / tf.reduce_max(sides))  # the resize to the model's input
        low_size = tf.maximum(tf.cast(tf.round(sides * seen * self._uniform((), *SCALE_RANGE)), tf.int32), 2)
        low = tf.image.resize(image, low_size, method="area")
        choice = tf.minimum(tf.cast(self._uniform((), 0.0, float(len(UPSAMPLERS))), tf.int32), len(UPSAMPLERS) - 1)
        branches = [lambda method=method: tf.image.resize(low, tf.stack([height, width]), method=method)
                    for method in UPSAMPLERS]
        return tf.switch_case(choice, branches)

    def _paste(self, image, resampled, height, width):
        """The whole image, or with region_probability only a feathered ellipse of it."""
        rows = tf.linspace(-1.0, 1.0, height)[:, None]
        columns = tf.linspace(-1.0, 1.0, width)[None, :]
        center_y, center_x = self._uniform((), -REGION_CENTER, REGION_CENTER), self._uniform((), -REGION_CENTER,
                                                                                           REGION_CENTER)
        half_h, half_w = self._uniform((), *REGION_HALF_HEIGHT), self._uniform((), *REGION_HALF_WIDTH)
        radius = tf.sqrt(((rows - center_y) / half_h) ** 2 + ((columns - center_x) / half_w) ** 2)
        region = tf.clip_by_value((1.0 - radius) / self._uniform((), *FEATHER_RANGE) + 0.5, 0.0, 1.0)
        in_region = self._uniform() < self.settings.region_probability
        mask = tf.where(in_region, region, tf.ones_like(region))[:, :, None]
        return mask * resampled + (1.0 - mask) * image

    def _add_noise(self, image):
        """Gaussian noise of a random level, mixed with its [1, 2, 1] blur as demosaicing correlates it."""
        noise = keras.random.normal(tf.shape(image), seed=self.seed_generator) * self._uniform((), *NOISE_STD_RANGE)
        taps = tf.constant([0.25, 0.5, 0.25])
        kernel = tf.tile((taps[:, None] * taps[None, :])[:, :, None, None], (1, 1, 3, 1))
        blurred = tf.nn.depthwise_conv2d(noise[None], kernel, (1, 1, 1, 1), "SAME")[0]
        correlation = self._uniform()
        return image + correlation * blurred + (1.0 - correlation) * noise


def build_resynthesis(config: AugmentationConfig, image_size: int, seed: int,
                      input_fit: str = "crop") -> Resynthesis | None:
    """The transform train.augment asks for, or None when it is off (or augmentation is)."""
    if not config.enabled or config.resynthesis_probability <= 0:
        return None
    settings = ResynthesisSettings(config.resynthesis_probability, config.resynthesis_region_probability,
                                   config.resynthesis_noise_probability)
    # seed + 1000: apart from the augmentation layers' seeds
    return Resynthesis(settings, image_size, seed=seed + 1000, input_fit=input_fit)


def expected_class_counts(labels, probability: float) -> dict[int, float]:
    """Images per class an epoch sees on average once `probability` of the reals become fakes."""
    n_fake = float(sum(1 for label in labels if label == 1))
    n_real = float(len(labels)) - n_fake
    return {0: n_real * (1.0 - probability), 1: n_fake + n_real * probability}
