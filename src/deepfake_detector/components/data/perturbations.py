"""What social networks and re-uploads do to images, as TensorFlow ops shared by training-time
augmentation and the robustness evaluation, so both degrade images in exactly the same way.

Every op takes one float32 image (H, W, 3) in [0, 255] of any size, returns the same size and
range, and works eagerly, inside tf.function and in tf.data maps (severities may be tensors there).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import tensorflow as tf

PIXEL_RANGE = (0.0, 255.0)

# A sigma this small gives a kernel of one tap (identity); it also keeps sigma = 0 from dividing by 0.
SMALLEST_SIGMA = 1e-3


def _as_image(image) -> tf.Tensor:
    return tf.cast(image, tf.float32)


def _clip(image: tf.Tensor) -> tf.Tensor:
    return tf.clip_by_value(image, *PIXEL_RANGE)


def jpeg(image, quality) -> tf.Tensor:
    """Re-encode as a baseline JPEG at `quality` (0-100, rounded to an integer) and decode again;
    pixels are rounded to uint8 first, as any saved image would be."""
    image = _as_image(image)
    pixels = tf.cast(tf.round(_clip(image)), tf.uint8)
    quality = tf.cast(tf.round(tf.cast(quality, tf.float32)), tf.int32)
    encoded = tf.image.adjust_jpeg_quality(pixels, quality)
    return tf.ensure_shape(tf.cast(encoded, tf.float32), image.shape)


def rescale(image, factor) -> tf.Tensor:
    """Down-scale each side by `factor` (antialiased bilinear, at least 1 pixel), then back up to
    the original size (bilinear): the detail a thumbnail or a low-resolution upload loses."""
    image = _as_image(image)
    size = tf.shape(image)[:2]
    smaller = tf.maximum(tf.cast(tf.round(tf.cast(size, tf.float32) * tf.cast(factor, tf.float32)), tf.int32), 1)
    smaller_image = tf.image.resize(image, smaller, method="bilinear", antialias=True)
    return _clip(tf.image.resize(smaller_image, size, method="bilinear"))


def _gaussian_weights(sigma: tf.Tensor, radius: tf.Tensor) -> tf.Tensor:
    offsets = tf.cast(tf.range(-radius, radius + 1), tf.float32)
    weights = tf.exp(-(offsets ** 2) / (2.0 * sigma ** 2))
    return weights / tf.reduce_sum(weights)


def gaussian_blur(image, sigma) -> tf.Tensor:
    """Blur with a Gaussian of standard deviation `sigma` pixels: a separable kernel of radius
    ceil(3 sigma), borders reflected so the size and (nearly) the mean brightness are kept.

    On images too small for that radius it is cut to the largest that reflection allows.
    sigma = 0 leaves the image unchanged.
    """
    image = _as_image(image)
    sigma = tf.maximum(tf.cast(sigma, tf.float32), SMALLEST_SIGMA)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    radius = tf.minimum(tf.cast(tf.math.ceil(3.0 * sigma), tf.int32), tf.minimum(height, width) - 1)
    weights = _gaussian_weights(sigma, radius)
    # Channels become the batch, so one single-channel kernel serves any number of channels.
    planes = tf.transpose(image, [2, 0, 1])[..., None]
    planes = tf.pad(planes, [[0, 0], [radius, radius], [0, 0], [0, 0]], mode="REFLECT")
    planes = tf.nn.conv2d(planes, weights[:, None, None, None], strides=1, padding="VALID")
    planes = tf.pad(planes, [[0, 0], [0, 0], [radius, radius], [0, 0]], mode="REFLECT")
    planes = tf.nn.conv2d(planes, weights[None, :, None, None], strides=1, padding="VALID")
    blurred = tf.transpose(planes[..., 0], [1, 2, 0])
    return tf.ensure_shape(_clip(blurred), image.shape)


def _seed_pair(seed) -> tf.Tensor:
    """A stateless-random seed: an int becomes (seed, 0); a pair (e.g. (seed, image index)) is kept."""
    if isinstance(seed, int):
        return tf.constant([seed, 0], dtype=tf.int64)
    return tf.cast(seed, tf.int64)


def gaussian_noise(image, std, seed) -> tf.Tensor:
    """Add Gaussian sensor noise of standard deviation `std` (0-255 units), then clip.

    The noise depends only on `seed` (an int or a pair of ints) and the image size, so the same
    seed always gives the same noise.
    """
    image = _as_image(image)
    noise = tf.random.stateless_normal(tf.shape(image), seed=_seed_pair(seed), stddev=tf.cast(std, tf.float32))
    return _clip(image + noise)


def center_crop(image, fraction) -> tf.Tensor:
    """Keep the central `fraction` of each side (at least 1 pixel) and stretch it back to the
    original size (bilinear), as a re-framed or zoomed upload would be."""
    image = _as_image(image)
    size = tf.shape(image)[:2]
    kept = tf.maximum(tf.cast(tf.round(tf.cast(size, tf.float32) * tf.cast(fraction, tf.float32)), tf.int32), 1)
    kept = tf.minimum(kept, size)
    offset = (size - kept) // 2
    cropped = image[offset[0]:offset[0] + kept[0], offset[1]:offset[1] + kept[1]]
    return tf.ensure_shape(_clip(tf.image.resize(cropped, size, method="bilinear")), image.shape)


def brightness_contrast(image, amount) -> tf.Tensor:
    """A brighter, flatter image: contrast scaled by (1 - amount) around the image's mean (all
    channels together, so colors keep their hue), then amount * 255 added, then clipped.

    Before clipping the mean rises by exactly amount * 255 and the standard deviation shrinks by
    (1 - amount); a negative amount darkens and steepens instead.
    """
    image = _as_image(image)
    amount = tf.cast(amount, tf.float32)
    mean = tf.reduce_mean(image)
    return _clip((image - mean) * (1.0 - amount) + mean + amount * PIXEL_RANGE[1])


@dataclass(frozen=True)
class Perturbation:
    """One entry of the catalogue: the op, what its severity means, and which way is harsher."""

    name: str
    function: Callable[..., tf.Tensor]
    severity_label: str
    harsher_when_lower: bool
    minimum: float
    maximum: float
    needs_seed: bool = False

    def check(self, severity: float) -> float:
        """The severity as a float, or ValueError naming this perturbation and the allowed range."""
        value = float(severity)
        if not (self.minimum <= value <= self.maximum):
            raise ValueError(f"perturbation {self.name!r}: {self.severity_label} {severity!r} is outside "
                             f"[{self.minimum:g}, {self.maximum:g}]")
        return value

    def mild_to_harsh(self, severities: Iterable[float]) -> list[float]:
        """Severities sorted from the mildest to the harshest, the order plots and tables use."""
        return sorted((float(s) for s in severities), reverse=self.harsher_when_lower)


PERTURBATIONS: dict[str, Perturbation] = {
    p.name: p for p in (
        Perturbation("jpeg", jpeg, "quality", harsher_when_lower=True, minimum=0, maximum=100),
        Perturbation("rescale", rescale, "scale factor", harsher_when_lower=True, minimum=0, maximum=1),
        Perturbation("blur", gaussian_blur, "sigma (px)", harsher_when_lower=False, minimum=0, maximum=math.inf),
        Perturbation("noise", gaussian_noise, "noise std (0-255)", harsher_when_lower=False, minimum=0,
                     maximum=255, needs_seed=True),
        Perturbation("crop", center_crop, "kept fraction", harsher_when_lower=True, minimum=0, maximum=1),
        Perturbation("brightness_contrast", brightness_contrast, "amount", harsher_when_lower=False,
                     minimum=-1, maximum=1),
    )
}

DEFAULT_SEVERITIES: dict[str, tuple[float, ...]] = {
    "jpeg": (90, 70, 50, 30),
    "rescale": (0.75, 0.5, 0.25),
    "blur": (0.5, 1.0, 2.0),
    "noise": (2, 5, 10),
    "crop": (0.9, 0.75, 0.5),
    "brightness_contrast": (0.1, 0.2, 0.3),
}


def get_perturbation(name: str) -> Perturbation:
    """The catalogue entry for name, or ValueError listing the known perturbations."""
    try:
        return PERTURBATIONS[name]
    except KeyError:
        raise ValueError(f"unknown perturbation {name!r}; known perturbations: "
                         f"{', '.join(PERTURBATIONS)}") from None


def apply_perturbation(name: str, image, severity, seed=None) -> tf.Tensor:
    """Apply the named perturbation at severity. A Python severity is range-checked first; seed
    (an int or a pair) is required by, and only used by, the random ones (noise)."""
    perturbation = get_perturbation(name)
    if isinstance(severity, (int, float)):
        severity = perturbation.check(severity)
    if not perturbation.needs_seed:
        return perturbation.function(image, severity)
    if seed is None:
        raise ValueError(f"perturbation {name!r} is random and needs a seed")
    return perturbation.function(image, severity, seed)
