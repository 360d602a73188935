"""The detector's architecture: raw RGB pixels in, P(fake) out, preprocessing inside the model.

MobileNetV2 (no top) is nested as a model named `backbone` so the trainer can freeze and unfreeze
it; the head is global average pooling, dropout and one sigmoid unit named `p_fake` (both names
pinned in contracts/layers.py). `ModelPreparer` is the prepare_model stage's component.
"""
from __future__ import annotations

import logging
import math
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from deepfake_detector.config.entities import ModelConfig
from deepfake_detector.contracts.errors import ModelError
from deepfake_detector.contracts.layers import BACKBONE_NAME, OUTPUT_NAME
from deepfake_detector.utils.files import atomic_path, write_json_atomic

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

IMAGENET_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
IMAGENET_DOWNLOAD_TIMEOUT_S = 60.0
# Keras publishes ImageNet weights for these widths and square input sizes only; other sizes
# load the 224 px file (convolution weights do not depend on the input size).
IMAGENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
IMAGENET_SIZES = (96, 128, 160, 192, 224)
_DOWNLOAD_CHUNK = 1 << 20


@dataclass(frozen=True)
class PreparedModel:
    model_file: Path
    summary_file: Path
    total_parameters: int
    trainable_parameters: int


def imagenet_weights_name(alpha: float, image_size: int) -> str:
    """The file name Keras gives MobileNetV2's no-top ImageNet weights for this width and size."""
    rows = image_size if image_size in IMAGENET_SIZES else 224
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}_no_top.h5"


def keras_cache_dir() -> Path:
    """Where Keras caches downloaded weights: $KERAS_HOME/models, else ~/.keras/models."""
    home = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
    return Path(home).expanduser() / "models"


def resolve_imagenet_weights(alpha: float, image_size: int) -> Path:
    """Path of the cached ImageNet backbone weights, downloading them (bounded timeout) if absent.

    Any failure is a ModelError that says how to proceed offline, so a machine without internet
    fails at once instead of hanging in a download or deep inside Keras.
    """
    if alpha not in IMAGENET_ALPHAS:
        raise ModelError(f"params.yaml: model.alpha = {alpha}: ImageNet weights exist only for alpha in "
                         f"{list(IMAGENET_ALPHAS)}; pick one of those or set model.weights: none")
    name = imagenet_weights_name(alpha, image_size)
    cached = keras_cache_dir() / name
    if cached.is_file():
        logger.info("Using cached ImageNet weights %s", cached)
        return cached
    url = IMAGENET_WEIGHTS_URL + name
    logger.info("Downloading ImageNet weights %s to %s", url, cached)
    try:
        with urllib.request.urlopen(url, timeout=IMAGENET_DOWNLOAD_TIMEOUT_S) as response, \
                atomic_path(cached) as tmp, open(tmp, "wb") as out, \
                tqdm(total=int(response.headers.get("Content-Length", 0)) or None, unit="B", unit_scale=True,
                     desc=name) as progress:
            for chunk in iter(lambda: response.read(_DOWNLOAD_CHUNK), b""):
                out.write(chunk)
                progress.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise ModelError(
            f"params.yaml: model.weights = imagenet, but {name} is not in the Keras cache "
            f"({cached.parent}) and downloading it from {url} failed: {error}. On a machine with "
            f"internet, download that file and copy it to {cached} (or to $KERAS_HOME/models), or set "
            "model.weights to the path of a MobileNetV2 no-top weights file, or to none to train "
            "from scratch."
        ) from None
    return cached


def _backbone_weights(config: ModelConfig) -> str | None:
    """What to hand keras.applications.MobileNetV2 as `weights`, failing early with a clear message."""
    if config.weights == "none":
        return None
    if config.weights == "imagenet":
        return str(resolve_imagenet_weights(config.alpha, config.image_size))
    path = Path(config.weights)
    if not path.is_file():
        raise ModelError(f"params.yaml: model.weights: weights file {path} not found (expected imagenet, "
                         "none, or the path of a MobileNetV2 no-top weights file)")
    if not path.name.endswith((".h5", ".hdf5")):
        raise ModelError(f"params.yaml: model.weights: {path} is not a .h5 / .weights.h5 file")
    return str(path)


def build_model(config: ModelConfig) -> keras.Model:
    """The untrained detector: uint8-range RGB in [0, 255] of shape (size, size, 3) -> P(fake).

    `weights` may be "imagenet", "none", or the path of backbone weights: a MobileNetV2
    include_top=False weights file at the same alpha (Keras' `*_no_top.h5` download, or a
    `.weights.h5` saved from a backbone). Whole-detector weights are not accepted here; they
    belong to a trained model, which the trainer and evaluator load as a model file.
    Every BatchNormalization gets `batch_norm_momentum`: Keras' 0.999 keeps from-scratch
    inference outputs constant for thousands of steps. With `freeze_batch_norm` the BN layers
    are saved non-trainable, which in Keras 3 also means inference mode (stored statistics)
    during fit. Calling the backbone with training=False would not do it: Keras 3's functional
    models let fit's training=True override a call-time training=False.
    """
    import keras  # here, not at the top: importing this module should not load TensorFlow

    weights = _backbone_weights(config)
    keras.utils.set_random_seed(config.seed)
    shape = (config.image_size, config.image_size, 3)
    try:
        backbone = keras.applications.MobileNetV2(input_shape=shape, alpha=config.alpha, include_top=False,
                                                  weights=weights, name=BACKBONE_NAME)
    except (ValueError, OSError) as error:  # a weights file of another shape, or not HDF5
        raise ModelError(f"params.yaml: model: cannot build MobileNetV2 (alpha={config.alpha}, image_size="
                         f"{config.image_size}, weights={config.weights}): {error}") from None
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = config.batch_norm_momentum
            layer.trainable = not config.freeze_batch_norm

    inputs = keras.Input(shape=shape, name="image")
    x = input_representation(inputs, config.representation)
    # MobileNetV2's own preprocess_input: [0, 255] -> [-1, 1].
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")(x)
    x = backbone(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(config.dropout, name="dropout")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name=OUTPUT_NAME)(x)
    return keras.Model(inputs, outputs, name="deepfake_detector")


def input_representation(images: keras.KerasTensor, representation: str) -> keras.KerasTensor:
    """What the backbone sees of the [0, 255] pixels (model.representation), built from stock layers
    so it is saved inside the model and runs in TFLite unchanged.

    - rgb: the pixels themselves.
    - npr: the neighbouring-pixel residual of Tan et al. (CVPR 2024), x - up(down(x)) with a
      stride-2 subsample and nearest up-sampling: each pixel minus the top-left pixel of its 2x2
      cell. Scene content mostly cancels, and what is left is how neighbours relate, which is
      what up-sampling layers fix whatever their kernel. It is centered on mid-gray so the
      backbone's [-1, 1] scaling keeps it symmetric.
    """
    import keras

    if representation == "rgb":
        return images
    if representation == "npr":
        cell_corner = keras.layers.MaxPooling2D(pool_size=1, strides=2, name="npr_subsample")(images)
        spread = keras.layers.UpSampling2D(2, interpolation="nearest", name="npr_upsample")(cell_corner)
        residual = keras.layers.Subtract(name="npr_residual")([images, spread])
        return keras.layers.Rescaling(1.0, offset=127.5, name="npr")(residual)
    raise ModelError(f"params.yaml: model.representation = {representation!r}: expected rgb or npr")


class ModelPreparer:
    """The prepare_model stage: build the detector, save it as .h5 and write a JSON summary of its size."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config

    def run(self) -> PreparedModel:
        config = self.config
        model = build_model(config)
        backbone = model.get_layer(BACKBONE_NAME)
        total = int(model.count_params())
        trainable = sum(math.prod(v.shape) for v in model.trainable_weights)
        with atomic_path(config.model_file) as tmp:
            model.save(tmp)
        summary = {
            "total_parameters": total,
            "trainable_parameters": trainable,
            "backbone_layers": len(backbone.layers),
            "alpha": config.alpha,
            "image_size": config.image_size,
            "weights": config.weights,
            "freeze_batch_norm": config.freeze_batch_norm,
            "representation": config.representation,
        }
        write_json_atomic(config.summary_file, summary)
        logger.info("Saved %s: %d parameters (%d trainable), %d backbone layers, weights=%s",
                    config.model_file, total, trainable, len(backbone.layers), config.weights)
        return PreparedModel(model_file=config.model_file, summary_file=config.summary_file,
                             total_parameters=total, trainable_parameters=trainable)
