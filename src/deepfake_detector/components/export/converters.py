"""Writes one export variant of a trained Keras model: the native .keras file or a LiteRT flatbuffer.

TFLite files go through Keras 3's own LiteRT exporter (ExportArchive -> SavedModel -> converter),
the conversion path TensorFlow supports for Keras 3 models; quantization is converter settings.
"""
from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepfake_detector.contracts.errors import ExportError
from deepfake_detector.contracts.export_layout import VARIANT_FILES
from deepfake_detector.utils.files import atomic_path

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

QUANTIZED_VARIANTS = ("float16", "int8_dynamic", "int8_full")
VARIANT_DESCRIPTIONS = {
    "keras": "Keras 3 native format (for further training or the keras backend)",
    "float32": "LiteRT, float32 weights and activations",
    "float16": "LiteRT, float16 weights, float32 activations",
    "int8_dynamic": "LiteRT, int8 weights, activations quantized on the fly (dynamic range)",
    "int8_full": "LiteRT, int8 weights and activations calibrated on train images, float32 I/O",
}

CalibrationImages = Callable[[], Iterable[np.ndarray]]


def _converter_settings(variant: str, calibration: CalibrationImages | None) -> dict:
    import tensorflow as tf

    if variant == "float32":
        return {}
    if variant == "float16":
        return {"optimizations": [tf.lite.Optimize.DEFAULT],
                "target_spec": {"supported_types": [tf.float16]}}
    if variant == "int8_dynamic":
        return {"optimizations": [tf.lite.Optimize.DEFAULT]}
    if variant == "int8_full":
        if calibration is None:
            raise ExportError("int8_full needs calibration images")

        def representative_dataset():
            for image in calibration():
                yield [np.asarray(image, dtype=np.float32)[None]]

        # Integer kernels only: conversion fails rather than silently keeping float ops.
        # Input and output stay float32 (quantize/dequantize inside), so every backend feeds
        # the same pixels and reads the same probability.
        return {"optimizations": [tf.lite.Optimize.DEFAULT], "representative_dataset": representative_dataset,
                "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]}}
    raise ExportError(f"unknown export variant {variant!r}; expected one of {', '.join(VARIANT_FILES)}")


def write_variant(model: keras.Model, variant: str, target: Path,
                  calibration: CalibrationImages | None = None) -> Path:
    """Write `variant` of model to target atomically; a failed conversion leaves nothing behind."""
    if variant not in VARIANT_FILES:
        raise ExportError(f"unknown export variant {variant!r}; expected one of {', '.join(VARIANT_FILES)}")
    with atomic_path(target) as tmp:
        if variant == "keras":
            model.save(tmp)
        else:
            settings = _converter_settings(variant, calibration)
            # Keras prints "Saved artifact at ..." for the temporary name; keep the log honest.
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    model.export(str(tmp), format="litert", **settings)
            except Exception as error:  # the converter raises a zoo of types (ConverterError, RuntimeError...)
                raise ExportError(f"{target.name}: LiteRT conversion ({variant}) failed: {error}") from error
    logger.info("Wrote %s (%s, %.2f MB)", target, variant, target.stat().st_size / 1e6)
    return target
