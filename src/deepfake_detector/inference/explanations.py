"""Heatmaps that show which regions drove a prediction: occlusion sensitivity for any backend,
Grad-CAM for the Keras model. TensorFlow is imported only inside the Grad-CAM builder."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from deepfake_detector.contracts.decision_rule import DEFAULT_THRESHOLD

if TYPE_CHECKING:
    import keras

# The model maps 127.5 to 0 after its own preprocessing: a gray patch carries no signal.
OCCLUSION_FILL = 127.5


def occlusion_map(predict_batch: Callable[[np.ndarray], np.ndarray], image: np.ndarray, grid: int = 8,
                  batch_size: int = 32, threshold: float = DEFAULT_THRESHOLD) -> tuple[np.ndarray, float]:
    """(heatmap (S, S) float32 in [0, 1], P(fake) of the unmasked image).

    The image is cut into grid x grid non-overlapping patches (edges rounded, so any S works); each
    patch in turn is painted gray and the copies are scored in batches of batch_size. A region's
    importance is how far hiding it moves the score away from the predicted class (p >= threshold
    is fake): p - p_masked for fake, p_masked - p for real, clipped at 0. Non-overlapping patches
    cost grid**2 + 1 forward passes (65 at the default), a quarter of half-stride patches; the
    bilinear upsampling smooths the blocks. A map of zeros means no single region mattered.
    """
    pixels = np.asarray(image, dtype=np.float32)
    if pixels.ndim != 3 or pixels.shape[0] != pixels.shape[1] or pixels.shape[2] != 3:
        raise ValueError(f"expected one square RGB image of shape (S, S, 3), got {pixels.shape}")
    size = pixels.shape[0]
    if not 1 <= grid <= size:
        raise ValueError(f"grid must be between 1 and the image size {size}, got {grid}")
    edges = np.round(np.linspace(0, size, grid + 1)).astype(int)
    p_fake = float(np.asarray(predict_batch(pixels[None]), dtype=np.float64).reshape(-1)[0])
    cells = [(row, col) for row in range(grid) for col in range(grid)]
    masked_scores = np.empty(len(cells), dtype=np.float64)
    for start in range(0, len(cells), batch_size):
        chunk = cells[start:start + batch_size]
        batch = np.repeat(pixels[None], len(chunk), axis=0)
        for index, (row, col) in enumerate(chunk):
            batch[index, edges[row]:edges[row + 1], edges[col]:edges[col + 1]] = OCCLUSION_FILL
        masked_scores[start:start + len(chunk)] = np.asarray(predict_batch(batch), dtype=np.float64).reshape(-1)
    drop = p_fake - masked_scores if p_fake >= threshold else masked_scores - p_fake
    importance = np.clip(drop, 0.0, None).reshape(grid, grid)
    return upsample_heatmap(normalize(importance), size), p_fake


def normalize(cam: np.ndarray) -> np.ndarray:
    """Scale a non-negative map so its maximum is 1; an all-zero (or empty) map stays zero."""
    cam = np.nan_to_num(np.asarray(cam, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0).clip(0.0, None)
    peak = float(cam.max()) if cam.size else 0.0
    return cam / peak if peak > 0 else np.zeros_like(cam)


def upsample_heatmap(cam: np.ndarray, size: int) -> np.ndarray:
    """(size, size) float32 in [0, 1]: a coarse map smoothly resized (bilinear, pixel-center aligned)."""
    cam = np.ascontiguousarray(cam, dtype=np.float32)
    resized = np.asarray(Image.fromarray(cam).resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)
    return resized.clip(0.0, 1.0)


def build_grad_cam(model: keras.Model, backbone_name: str, output_name: str,
                   preprocess_name: str = "preprocess", pool_name: str = "pool",
                   ) -> Callable[[np.ndarray, float], tuple[np.ndarray, float]] | None:
    """A compiled Grad-CAM for the detector's layout (preprocess -> backbone -> pool -> dense), or
    None when the model lacks those layers (the caller falls back to occlusion).

    The returned function maps one (S, S, 3) image and a threshold to (heatmap (S, S) in [0, 1],
    P(fake)). Everything up to the backbone (the input representation, if any, and the scaling)
    runs as the model's own front, so the explained P(fake) is the model's. The target is the
    logit of the predicted class, taken before the sigmoid so a confident prediction still has
    gradients; the feature map is the backbone's last activation.
    Traced once, with a fixed signature, so concurrent calls never retrace.
    """
    import keras
    import tensorflow as tf

    try:
        preprocess = model.get_layer(preprocess_name)
        backbone = model.get_layer(backbone_name)
        pool = model.get_layer(pool_name)
        dense = model.get_layer(output_name)
    except ValueError:
        return None
    if not isinstance(dense, keras.layers.Dense) or dense.activation is not keras.activations.sigmoid:
        return None
    size = int(model.input_shape[1])
    front = keras.Model(model.inputs, preprocess.output)  # model.representation's layers, then the scaling

    @tf.function(input_signature=[tf.TensorSpec([size, size, 3], tf.float32), tf.TensorSpec([], tf.float32)])
    def compute(image, threshold):
        inputs = front(image[None], training=False)
        with tf.GradientTape() as tape:
            features = backbone(inputs, training=False)
            tape.watch(features)
            logit = tf.matmul(pool(features), dense.kernel) + dense.bias
            p_fake = tf.sigmoid(logit)[0, 0]
            target = tf.where(p_fake >= threshold, logit[0, 0], -logit[0, 0])
        gradients = tape.gradient(target, features)
        weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))[0]
        return cam, p_fake

    compute.get_concrete_function()  # trace now, not inside the first request

    def grad_cam(image: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> tuple[np.ndarray, float]:
        cam, p_fake = compute(np.asarray(image, dtype=np.float32), np.float32(threshold))
        return upsample_heatmap(normalize(cam.numpy()), size), float(p_fake.numpy())

    return grad_cam
