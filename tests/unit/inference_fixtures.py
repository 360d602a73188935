"""Builders for inference tests: small detector-shaped Keras models, their TFLite exports, a model card
in the export stage's shape, and encoded test images."""
from __future__ import annotations

import io
import json
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from deepfake_detector.components.model.factory import build_model
from deepfake_detector.config.entities import ModelConfig
from deepfake_detector.contracts.layers import BACKBONE_NAME, OUTPUT_NAME
from deepfake_detector.utils.files import sha256_file

TOY_SIZE = 32


def toy_detector(size: int = TOY_SIZE, seed: int = 0) -> keras.Model:
    """The detector's layout (image -> preprocess -> nested backbone -> pool -> dropout -> p_fake) with a
    two-layer backbone: it exports to TFLite in about 2 s where MobileNetV2 takes 15 s or more."""
    keras.utils.set_random_seed(seed)
    backbone_input = keras.Input((size, size, 3))
    features = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(backbone_input)
    features = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(features)
    backbone = keras.Model(backbone_input, features, name=BACKBONE_NAME)
    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(backbone(x))
    x = keras.layers.Dropout(0.2, name="dropout")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name=OUTPUT_NAME)(x)
    return keras.Model(inputs, outputs, name="toy_detector")


def mobilenet_detector(root: Path, size: int = 64) -> keras.Model:
    """The real architecture at alpha 0.35, with BatchNorm statistics taken from one random batch.

    Untrained, MobileNetV2's activations shrink to about 1e-11 by the last layer, so every image
    scores 0.5; calibrated statistics make the score depend on the image, as a trained model's does.
    """
    config = ModelConfig(root_dir=root, model_file=root / "base_model.h5", summary_file=root / "summary.json",
                         alpha=0.35, image_size=size, weights="none", dropout=0.2, batch_norm_momentum=0.9,
                         freeze_batch_norm=False, seed=7)
    model = build_model(config)
    for layer in model.get_layer(BACKBONE_NAME).layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(random_pixels(16, size, seed=99), training=True)
    return model


def random_pixels(count: int, size: int = TOY_SIZE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (count, size, size, 3)).astype("float32")


def export_tflite(model: keras.Model, path: Path, **converter_options) -> Path:
    model.export(str(path), format="litert", verbose=False, **converter_options)
    return path


def write_model_card(export_dir: Path, model_file: Path, exports: dict[str, Path], threshold: float = 0.5,
                     temperature: float = 1.0) -> Path:
    """model_card.json as the export stage writes it (file names relative to export_dir)."""
    card = {
        "source": {"file": str(model_file), "sha256": sha256_file(model_file)},
        "output": {"threshold": threshold, "temperature": temperature},
        "exports": {variant: {"file": path.name, "sha256": sha256_file(path)} for variant, path in exports.items()},
    }
    path = export_dir / "model_card.json"
    path.write_text(json.dumps(card, indent=2), encoding="utf-8")
    return path


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 RGB with smooth structure and fine noise: both matter to JPEG and to resizing."""
    rows, cols = np.mgrid[0:height, 0:width]
    base = np.stack([128 + 90 * np.sin(cols / 7.0 + c) * np.cos(rows / 11.0 - c) for c in range(3)], axis=-1)
    noise = np.random.default_rng(seed).normal(0, 25, (height, width, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def encode(image: Image.Image | np.ndarray, image_format: str, **options) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()
