"""The manifest contract and the tf.data input pipeline shared by the trainer and evaluator.

Images are decoded and resized once (bilinear with antialias, float pixels in [0, 255]); the
model does its own preprocessing, so every consumer feeds exactly this.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from deepfake_detector.contracts.errors import DataValidationError

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
    return frame


def split_rows(manifest: pd.DataFrame, split: str, dataset_dir: Path) -> tuple[list[str], list[int]]:
    """Absolute image paths and labels of one split, in manifest order."""
    rows = manifest[manifest["split"] == split]
    paths = [str(Path(dataset_dir) / p) for p in rows["path"]]
    return paths, rows["label"].astype(int).tolist()


def decode_native(path):
    """One image file as float32 (H, W, 3) in [0, 255] at its own size (first frame, RGB): what a
    perturbation sees before the model's resize."""
    import tensorflow as tf

    return tf.cast(_decode_8bit(path), tf.float32)


def resize_tensor_for_model(image, image_size: int):
    """TensorFlow graph op: bilinear with antialias to (image_size, image_size, 3), clipped to [0, 255].

    The serving runtime's Pillow twin is inference.images.resize_for_model.
    """
    import tensorflow as tf

    image = tf.image.resize(image, (image_size, image_size), method="bilinear", antialias=True)
    image.set_shape((image_size, image_size, 3))
    return tf.clip_by_value(image, 0.0, 255.0)


def _decode_8bit(path):
    import tensorflow as tf

    return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)


def decode_and_resize(path, image_size: int):
    """Read one image file into a float32 [image_size, image_size, 3] tensor in [0, 255]."""
    return resize_tensor_for_model(decode_native(path), image_size)


def build_dataset(paths: list[str], labels: list[int], image_size: int, batch_size: int, *,
                  shuffle: bool = False, seed: int = 0, cache: bool = False,
                  augment: Callable | None = None, native_transform: Callable | None = None):
    """Batched (images, labels) dataset: parallel decode, optional in-memory cache of the
    decoded images, per-epoch shuffle, augmentation after the cache, prefetch.

    native_transform(image, label) -> (image, label), when given, sees each image at its own size
    (float32 in [0, 255]) before the resize, after the cache: traces of the kind the detector
    looks for live at the native resolution, and the resize would blur them. The cache then holds
    the decoded 8-bit images instead of the resized ones."""
    import tensorflow as tf

    if not paths:
        raise DataValidationError("no images in this split of the manifest")
    autotune = tf.data.AUTOTUNE
    dataset = tf.data.Dataset.from_tensor_slices((paths, tf.constant(labels, dtype=tf.float32)))
    if native_transform is None:
        dataset = dataset.map(lambda p, y: (decode_and_resize(p, image_size), y), num_parallel_calls=autotune,
                              deterministic=True)
    else:
        dataset = dataset.map(lambda p, y: (_decode_8bit(p), y), num_parallel_calls=autotune, deterministic=True)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    if native_transform is not None:
        def transform_and_resize(image, label):
            image, label = native_transform(tf.cast(image, tf.float32), label)
            return resize_tensor_for_model(image, image_size), label
        dataset = dataset.map(transform_and_resize, num_parallel_calls=autotune, deterministic=True)
    dataset = dataset.batch(batch_size)
    if augment is not None:
        dataset = dataset.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=autotune)
    return dataset.prefetch(autotune)
