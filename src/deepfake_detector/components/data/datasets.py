"""The manifest contract and the tf.data input pipeline shared by the trainer and evaluator.

Images are decoded and fit to the model input once (a center crop at native resolution or an
antialiased bilinear resize, float pixels in [0, 255]); the model does its own preprocessing, so every
consumer feeds exactly this, and the serving runtime (inference.images) reproduces it without TensorFlow.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from deepfake_detector.contracts.errors import DataValidationError
from deepfake_detector.contracts.frames_index import VIDEO_COLUMN  # the manifest's, when there were videos
from deepfake_detector.inference.images import FITS as FITS  # re-exported: the fits build_dataset accepts
from deepfake_detector.inference.images import JPEG_SCALE_DENOMINATORS, REDUCED_DECODE_MIN_SCALE, check_fit

MANIFEST_COLUMNS = ("path", "label", "split", "sha256", "group")

SPLITS = ("train", "val", "test")


def read_manifest(manifest_file: Path) -> pd.DataFrame:
    """Load the manifest written by the validate stage, checking its columns and values."""
    try:
        frame = pd.read_csv(manifest_file,
                            dtype={"path": str, "split": str, "sha256": str, "group": str})
    except FileNotFoundError:
        raise DataValidationError(
            f"{manifest_file}: manifest not found; run the validate stage first") from None
    missing = [c for c in MANIFEST_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(f"{manifest_file}: missing columns {missing}")
    bad_splits = sorted(set(frame["split"]) - set(SPLITS))
    if bad_splits:
        raise DataValidationError(f"{manifest_file}: unknown split names {bad_splits}")
    if not set(frame["label"].unique()) <= {0, 1}:
        raise DataValidationError(f"{manifest_file}: labels must be 0 (real) or 1 (fake)")
    if VIDEO_COLUMN in frame.columns:  # a still's empty cell reads as NaN
        frame[VIDEO_COLUMN] = frame[VIDEO_COLUMN].fillna("").astype(str)
    return frame


def split_rows(manifest: pd.DataFrame, split: str, dataset_dir: Path) -> tuple[list[str], list[int]]:
    """Absolute image paths and labels of one split, in manifest order."""
    rows = manifest[manifest["split"] == split]
    paths = [str(Path(dataset_dir) / p) for p in rows["path"]]
    return paths, rows["label"].astype(int).tolist()


def decode_native(path):
    """One image file as float32 (H, W, 3) in [0, 255] at its own size (first frame, RGB): what a
    perturbation sees before the model's fit."""
    import tensorflow as tf

    return tf.cast(_decode_8bit(path), tf.float32)


def fit_tensor_for_model(image, image_size: int, fit: str):
    """TensorFlow graph op: float32 (image_size, image_size, 3) in [0, 255], the center square at native
    resolution ("crop", when the image is at least image_size on both sides) or resize_tensor_for_model
    ("resize", and "crop" of a smaller image). Odd margins leave the extra pixel at the bottom and right.

    The serving runtime's numpy twin is inference.images.fit_for_model."""
    import tensorflow as tf

    check_fit(fit)
    if fit == "resize":
        return resize_tensor_for_model(image, image_size)
    height, width = tf.shape(image)[0], tf.shape(image)[1]

    def center_crop():
        top, left = (height - image_size) // 2, (width - image_size) // 2
        return tf.cast(image[top:top + image_size, left:left + image_size], tf.float32)

    fitted = tf.cond((height >= image_size) & (width >= image_size), center_crop,
                     lambda: resize_tensor_for_model(image, image_size))
    fitted.set_shape((image_size, image_size, 3))
    return fitted


def resize_tensor_for_model(image, image_size: int):
    """TensorFlow graph op: bilinear with antialias to (image_size, image_size, 3), clipped to [0, 255].

    The serving runtime's twin (scipy sparse products) is inference.images.resize_for_model.
    """
    import tensorflow as tf

    image = tf.image.resize(image, (image_size, image_size), method="bilinear", antialias=True)
    image.set_shape((image_size, image_size, 3))
    return tf.clip_by_value(image, 0.0, 255.0)


def decode_and_fit(path, image_size: int, fit: str):
    """Read one image file into the model input, float32 [image_size, image_size, 3] in [0, 255].

    For "resize", a large JPEG is decoded at a reduced scale (inference.images.jpeg_scale_denominator)
    and its exact extent resized, as the serving runtime's load_image does."""
    check_fit(fit)
    if fit == "crop":
        return fit_tensor_for_model(_decode_8bit(path), image_size, fit)
    return _resize_extent(*_decode_reduced(path, image_size), image_size)


def decode_and_resize(path, image_size: int):
    """decode_and_fit with the "resize" fit."""
    return decode_and_fit(path, image_size, "resize")


def _decode_8bit(path):
    """uint8 (H, W, 3) at full scale."""
    import tensorflow as tf

    return _decode_contents(tf.io.read_file(path), lambda decode_jpeg, contents: decode_jpeg(1))


def _decode_reduced(path, image_size: int):
    """(uint8 (h, w, 3), the original's (height, width) in decoded pixels): a large JPEG decoded at 1/2,
    1/4 or 1/8 scale (jpeg_scale_denominator), anything else at full scale."""
    import tensorflow as tf

    def reduced_jpeg(decode_jpeg, contents):
        shape = tf.io.extract_jpeg_shape(contents)
        index = _jpeg_scale_index(shape, image_size)
        denominator = tf.gather(tf.constant(JPEG_SCALE_DENOMINATORS, tf.float32), index)
        extent = tf.cast(shape[:2], tf.float32) / denominator
        image = tf.switch_case(index, [lambda d=d: decode_jpeg(d) for d in JPEG_SCALE_DENOMINATORS])
        return image, extent

    def whole(image):
        return image, tf.cast(tf.shape(image)[:2], tf.float32)

    return _decode_contents(tf.io.read_file(path), reduced_jpeg, whole)


def _decode_contents(contents, jpeg, other=lambda image: image):
    """jpeg(decode_jpeg, contents) for a JPEG, where decode_jpeg(denominator) is libjpeg's accurate integer
    IDCT (which Pillow's decoder, the serving side, reproduces bit for bit); other(tf.io.decode_image(...))
    for the other formats."""
    import tensorflow as tf

    def decode_jpeg(denominator: int):
        return tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE", ratio=denominator)

    return tf.cond(tf.io.is_jpeg(contents), lambda: jpeg(decode_jpeg, contents),
                   lambda: other(tf.io.decode_image(contents, channels=3, expand_animations=False)))


def _jpeg_scale_index(shape, image_size: int):
    """Index into JPEG_SCALE_DENOMINATORS of the one jpeg_scale_denominator picks for a JPEG of this shape:
    the rule holds for every smaller denominator once it holds for a larger one, so counting suffices."""
    import tensorflow as tf

    smaller_side = tf.minimum(shape[0], shape[1])
    smallest = REDUCED_DECODE_MIN_SCALE * image_size
    fits = [-(-smaller_side // denominator) >= smallest for denominator in JPEG_SCALE_DENOMINATORS[1:]]
    return tf.add_n([tf.cast(fit, tf.int32) for fit in fits])


def _resize_extent(image, extent, image_size: int):
    """resize_tensor_for_model of the (height, width) extent of the image, which may end inside its last
    row and column; the same kernel tf.image.resize(antialias=True) applies, with the extent's scale."""
    import tensorflow as tf

    resized = tf.raw_ops.ScaleAndTranslate(
        images=tf.cast(image, tf.float32)[None], size=[image_size, image_size],
        scale=tf.cast(image_size, tf.float32) / extent, translation=tf.zeros(2), kernel_type="triangle",
        antialias=True)[0]
    resized.set_shape((image_size, image_size, 3))
    return tf.clip_by_value(resized, 0.0, 255.0)


def build_dataset(paths: list[str], labels: list[int], image_size: int, batch_size: int, *,
                  shuffle: bool = False, seed: int = 0, cache: bool = False,
                  augment: Callable | None = None, native_transform: Callable | None = None, fit: str = "resize"):
    """Batched (images, labels) dataset: parallel decode, optional in-memory cache of the
    decoded images, per-epoch shuffle, augmentation after the cache, prefetch.

    fit (one of FITS) turns each image into the model input, as fit_tensor_for_model does.
    native_transform(image, label) -> (image, label), when given, sees each image at its own size
    (float32 in [0, 255]) before the fit, after the cache: traces of the kind the detector
    looks for live at the native resolution, and a resize would blur them. The cache then holds
    the decoded 8-bit images instead of the fitted ones, all decoded at full scale (without a
    native_transform, the "resize" fit decodes a large JPEG at a reduced scale, as serving does)."""
    import tensorflow as tf

    check_fit(fit)
    if not paths:
        raise DataValidationError("no images in this split of the manifest")
    autotune = tf.data.AUTOTUNE
    dataset = tf.data.Dataset.from_tensor_slices((paths, tf.constant(labels, dtype=tf.float32)))
    if native_transform is None:
        dataset = dataset.map(lambda p, y: (decode_and_fit(p, image_size, fit), y), num_parallel_calls=autotune,
                              deterministic=True)
    else:
        dataset = dataset.map(lambda p, y: (_decode_8bit(p), y), num_parallel_calls=autotune, deterministic=True)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    if native_transform is not None:
        def transform_and_fit(image, label):
            image, label = native_transform(tf.cast(image, tf.float32), label)
            return fit_tensor_for_model(image, image_size, fit), label
        dataset = dataset.map(transform_and_fit, num_parallel_calls=autotune, deterministic=True)
    dataset = dataset.batch(batch_size)
    if augment is not None:
        dataset = dataset.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=autotune)
    return dataset.prefetch(autotune)
