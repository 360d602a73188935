"""Predictors: one trained model behind a thread-safe predict/explain interface, served either by the
TFLite runtime (no TensorFlow in the process) or by Keras, and `load_predictor`, which picks one
from the export folder's model card.
"""
from __future__ import annotations

import abc
import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepfake_detector.contracts.errors import ModelError
from deepfake_detector.contracts.export_layout import MODEL_CARD_NAME, TFLITE_VARIANTS
from deepfake_detector.contracts.temperature import apply_temperature
from deepfake_detector.inference.explanations import DEFAULT_THRESHOLD, build_grad_cam, occlusion_map
from deepfake_detector.inference.images import load_image
from deepfake_detector.utils.files import sha256_file

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "tflite", "keras")


@dataclass(frozen=True)
class Explanation:
    heatmap: np.ndarray  # float32 (S, S) in [0, 1]: how much each pixel's region drove the prediction
    method: str          # "grad-cam" or "occlusion"
    p_fake: float        # the prediction being explained


class Predictor(abc.ABC):
    """One loaded model: float32 RGB batches in [0, 255] in, P(fake) out. Safe to share between threads.

    `threshold` only decides which class an explanation argues for (P(fake) >= threshold is fake).
    `temperature` calibrates every P(fake) returned (the evaluate stage's temperature scaling); both
    apply to the calibrated P(fake).
    """

    backend: str = ""
    # Larger batches are split. A TFLite interpreter keeps the arena of the largest batch it ran
    # (about 6 MB per image at 224 px, alpha 1.0), so this bounds each thread's memory; batches
    # beyond 8 gain little throughput on a CPU.
    max_batch_size = 8
    occlusion_grid = 8        # occlusion explanations hide 8 x 8 patches, one at a time

    def __init__(self, model_path: Path, image_size: int, variant: str, threshold: float = DEFAULT_THRESHOLD,
                 temperature: float = 1.0):
        self.model_path = Path(model_path)
        self.image_size = int(image_size)
        self.variant = variant
        self.threshold = float(threshold)
        self.temperature = float(temperature)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """float64 (N,) calibrated P(fake) for a float32 (N, S, S, 3) batch of raw RGB pixels; N may be 0."""
        return apply_temperature(self._predict_raw(images), self.temperature)

    def _predict_raw(self, images: np.ndarray) -> np.ndarray:
        """The model's own output, before temperature scaling."""
        batch = np.asarray(images)
        expected = (self.image_size, self.image_size, 3)
        if batch.ndim != 4 or batch.shape[1:] != expected:
            raise ValueError(f"expected a batch of shape (N, {', '.join(map(str, expected))}), got {batch.shape}")
        batch = batch.astype(np.float32, copy=False)
        if len(batch) == 0:
            return np.empty(0, dtype=np.float64)
        return np.concatenate([self._predict_batch(batch[start:start + self.max_batch_size])
                               for start in range(0, len(batch), self.max_batch_size)])

    def predict_image(self, source: bytes | str | os.PathLike) -> float:
        """P(fake) of one encoded image (bytes or a path), decoded and resized as in training."""
        return float(self.predict(load_image(source, self.image_size)[None])[0])

    def explain(self, image: np.ndarray, threshold: float | None = None) -> Explanation:
        """A heatmap of the regions behind the prediction for one (S, S, 3) image."""
        pixels = np.asarray(image)
        expected = (self.image_size, self.image_size, 3)
        if pixels.shape != expected:
            raise ValueError(f"expected one image of shape {expected}, got {pixels.shape}")
        threshold = self.threshold if threshold is None else float(threshold)
        # Backends explain the raw output, so they get the same decision boundary in raw terms.
        raw_threshold = float(apply_temperature(threshold, 1.0 / self.temperature))
        heatmap, raw_p_fake, method = self._explain(pixels.astype(np.float32, copy=False), raw_threshold)
        return Explanation(heatmap=heatmap, method=method,
                           p_fake=float(apply_temperature(raw_p_fake, self.temperature)))

    def warm_up(self) -> None:
        """Run one dummy prediction so that the first real request does not pay for set-up."""
        self.predict(np.full((1, self.image_size, self.image_size, 3), 127.5, dtype=np.float32))

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the backend holds (interpreters, the model); do not use the predictor afterwards."""

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(backend={self.backend!r}, variant={self.variant!r}, "
                f"model_path='{self.model_path}', image_size={self.image_size})")

    @abc.abstractmethod
    def _predict_batch(self, batch: np.ndarray) -> np.ndarray:
        """float64 (n,) for a validated float32 batch of 1 to max_batch_size images."""

    def _explain(self, image: np.ndarray, threshold: float) -> tuple[np.ndarray, float, str]:
        heatmap, p_fake = occlusion_map(self._predict_raw, image, grid=self.occlusion_grid,
                                        batch_size=self.max_batch_size, threshold=threshold)
        return heatmap, p_fake, "occlusion"


@dataclass
class _Session:
    """A TFLite interpreter and the batch size its input tensor is currently allocated for."""

    interpreter: Any
    batch_size: int


class TFLitePredictor(Predictor):
    """The TFLite runtime (ai-edge-litert): no TensorFlow or Keras is imported.

    Interpreters are not thread-safe. By default each thread gets its own, created on first use:
    threads never wait for each other, and all interpreters share one in-memory copy of the model
    file, but each holds its own tensor arena (activations, growing with the batch) and its own
    packed weights: about 17 MB more per thread for the float32 224 px alpha 1.0 model at batch 1.
    With per_thread_interpreters=False one interpreter is shared behind a lock: the least memory,
    one prediction at a time. An input tensor is resized only when the batch size changes.
    """

    backend = "tflite"

    def __init__(self, model_path: str | Path, num_threads: int | None = None, variant: str | None = None, *,
                 per_thread_interpreters: bool = True, expected_sha256: str | None = None,
                 threshold: float = DEFAULT_THRESHOLD, temperature: float = 1.0):
        path = Path(model_path)
        try:
            self._content = path.read_bytes()
        except FileNotFoundError:
            raise ModelError(f"{path}: TFLite model not found") from None
        except OSError as error:
            raise ModelError(f"{path}: cannot read the TFLite model: {error.strerror or error}") from None
        self.sha256 = hashlib.sha256(self._content).hexdigest()
        if expected_sha256 is not None and self.sha256 != expected_sha256:
            raise ModelError(f"{path}: SHA-256 {self.sha256} differs from the model card's {expected_sha256}; "
                             "the file changed after export: re-run the export stage")
        # None means every core this process may use, as serve.num_threads documents.
        self.num_threads = num_threads if num_threads is not None else _usable_cores()
        self.per_thread_interpreters = per_thread_interpreters
        self._path_for_errors = path
        first = self._new_session()
        inputs, outputs = first.interpreter.get_input_details(), first.interpreter.get_output_details()
        shape = tuple(int(d) for d in inputs[0]["shape"]) if len(inputs) == 1 else ()
        if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3 or len(outputs) != 1 \
                or int(outputs[0]["shape"][-1]) != 1:
            raise ModelError(f"{path}: expected one (N, S, S, 3) image input and one (N, 1) output, got inputs "
                             f"{[list(d['shape']) for d in inputs]} and outputs {[list(d['shape']) for d in outputs]}")
        super().__init__(path, shape[1], variant or path.stem, threshold, temperature)
        self._input = inputs[0]
        self._output = outputs[0]
        self._lock = threading.Lock()
        self._local = threading.local()
        self._shared: _Session | None = None
        if per_thread_interpreters:
            self._local.session = first
        else:
            self._shared = first

    def close(self) -> None:
        self._local = threading.local()
        self._shared = None

    def _new_session(self) -> _Session:
        from ai_edge_litert.interpreter import Interpreter

        try:
            interpreter = Interpreter(model_content=self._content, num_threads=self.num_threads)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ModelError(f"{self._path_for_errors}: not a valid TFLite model: {error}") from None
        inputs = interpreter.get_input_details()
        return _Session(interpreter, int(inputs[0]["shape"][0]) if inputs else 0)

    def _predict_batch(self, batch: np.ndarray) -> np.ndarray:
        if not self.per_thread_interpreters:
            with self._lock:
                if self._shared is None:
                    self._shared = self._new_session()
                return self._run(self._shared, batch)
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = self._new_session()
        return self._run(session, batch)

    def _run(self, session: _Session, batch: np.ndarray) -> np.ndarray:
        interpreter, index = session.interpreter, self._input["index"]
        if session.batch_size != len(batch):
            interpreter.resize_tensor_input(index, [len(batch), self.image_size, self.image_size, 3])
            interpreter.allocate_tensors()
            session.batch_size = len(batch)
        interpreter.set_tensor(index, _quantize(batch, self._input))
        interpreter.invoke()
        scores = _dequantize(interpreter.get_tensor(self._output["index"]), self._output)
        return scores.reshape(len(batch), -1)[:, 0]


class KerasPredictor(Predictor):
    """The trained Keras model (.h5 or .keras) through one compiled tf.function; explanations by
    Grad-CAM on the backbone's last feature map (occlusion if the model has another layout).
    TensorFlow runs traced graphs concurrently, so no lock is needed."""

    backend = "keras"

    def __init__(self, model_path: str | Path, *, threshold: float = DEFAULT_THRESHOLD, temperature: float = 1.0):
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"{path}: Keras model not found")
        import keras
        import tensorflow as tf

        from deepfake_detector.components.model.factory import BACKBONE_NAME, OUTPUT_NAME

        try:
            model = keras.models.load_model(path, compile=False)
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise ModelError(f"{path}: cannot load the Keras model: {error}") from None
        shape = tuple(model.input_shape) if not isinstance(model.input_shape, list) else ()
        if len(shape) != 4 or shape[1] is None or shape[1] != shape[2] or shape[3] != 3:
            raise ModelError(f"{path}: expected an (N, S, S, 3) image input, got {model.input_shape}")
        super().__init__(path, shape[1], "keras", threshold, temperature)
        self._model = model
        spec = tf.TensorSpec([None, self.image_size, self.image_size, 3], tf.float32)
        self._forward = tf.function(lambda images: model(images, training=False), input_signature=[spec])
        self._forward.get_concrete_function()  # trace once, here, rather than racing in the first requests
        self._grad_cam = build_grad_cam(model, BACKBONE_NAME, OUTPUT_NAME)
        if self._grad_cam is None:
            logger.info("%s: no %r/%r layers for Grad-CAM; explanations use occlusion", path, BACKBONE_NAME,
                        OUTPUT_NAME)

    def close(self) -> None:
        self._model = self._forward = self._grad_cam = None

    def _predict_batch(self, batch: np.ndarray) -> np.ndarray:
        return self._forward(batch).numpy().reshape(len(batch), -1)[:, 0].astype(np.float64)

    def _explain(self, image: np.ndarray, threshold: float) -> tuple[np.ndarray, float, str]:
        if self._grad_cam is None:
            return super()._explain(image, threshold)
        heatmap, p_fake = self._grad_cam(image, threshold)
        return heatmap, p_fake, "grad-cam"


def load_predictor(model_file: str | Path, export_dir: str | Path | None = None, backend: str = "auto",
                   variant: str = "float32", num_threads: int | None = None) -> Predictor:
    """The predictor serving should use.

    tflite: export_dir's <variant> file, which must match the model card's SHA-256 (model_file need
    not exist; if it does and differs from the card's source, the export is stale: a warning).
    keras: model_file itself. auto: tflite when that export is intact and was made from model_file
    (or model_file is absent), else keras; the choice and its reason are logged.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if backend != "keras" and variant not in TFLITE_VARIANTS:
        raise ValueError(f"unknown TFLite variant {variant!r}: expected one of {', '.join(TFLITE_VARIANTS)}")
    model_file = Path(model_file)
    export_dir = Path(export_dir) if export_dir is not None else None

    if backend == "tflite":
        card = _read_card(export_dir)
        tflite_file, expected = _export_entry(card, export_dir, variant)
        if model_file.is_file() and sha256_file(model_file) != card["source"]["sha256"]:
            logger.warning("%s is stale: %s changed after the export; re-run the export stage", tflite_file,
                           model_file)
        return TFLitePredictor(tflite_file, num_threads, variant, expected_sha256=expected,
                               threshold=card["threshold"], temperature=card["temperature"])

    if backend == "keras":
        threshold, temperature = _matching_card_calibration(model_file, export_dir)
        return KerasPredictor(model_file, threshold=threshold, temperature=temperature)

    try:
        card = _read_card(export_dir)
    except ModelError as reason:
        return _fall_back_to_keras(model_file, reason, logging.INFO)
    try:
        tflite_file, expected = _export_entry(card, export_dir, variant)
        if sha256_file(tflite_file) != expected:
            raise ModelError(f"{tflite_file} differs from the model card's SHA-256 (changed after export)")
        if model_file.is_file() and sha256_file(model_file) != card["source"]["sha256"]:
            raise ModelError(f"the export is stale: {model_file} changed after it was exported")
    except ModelError as reason:
        return _fall_back_to_keras(model_file, reason, logging.WARNING)
    logger.info("Serving %s with the TFLite backend (variant %s)%s", tflite_file, variant,
                "" if model_file.is_file() else f"; {model_file} is absent, the export is taken as is")
    return TFLitePredictor(tflite_file, num_threads, variant, expected_sha256=expected, threshold=card["threshold"],
                           temperature=card["temperature"])


def _fall_back_to_keras(model_file: Path, reason: ModelError, level: int) -> Predictor:
    if not model_file.is_file():
        raise ModelError(f"no model to serve: {model_file} not found, and no usable TFLite export ({reason})")
    logger.log(level, "Serving %s with the Keras backend: %s", model_file, reason)
    return KerasPredictor(model_file)


def _matching_card_calibration(model_file: Path, export_dir: Path | None) -> tuple[float, float]:
    """The card's (threshold, temperature) when the card was made from this very model_file, else
    the defaults (0.5, uncalibrated)."""
    try:
        card = _read_card(export_dir)
    except ModelError:
        return DEFAULT_THRESHOLD, 1.0
    if model_file.is_file() and sha256_file(model_file) == card["source"]["sha256"]:
        return card["threshold"], card["temperature"]
    return DEFAULT_THRESHOLD, 1.0


def _read_card(export_dir: Path | None) -> dict[str, Any]:
    """The export stage's model card, checked for the keys this module reads."""
    if export_dir is None:
        raise ModelError("no export folder given")
    path = export_dir / MODEL_CARD_NAME
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path} not found: run the export stage (or use the keras backend)") from None
    except (OSError, ValueError) as error:
        raise ModelError(f"{path}: unreadable model card: {error}") from None
    try:
        source_sha = card["source"]["sha256"]
        exports = card["exports"]
        # The export stage records it under output.threshold; a top-level "threshold" is read too.
        output = card.get("output") if isinstance(card.get("output"), dict) else {}
        threshold = float(card.get("threshold", output.get("threshold", DEFAULT_THRESHOLD)))
        temperature = float(output.get("temperature", 1.0))  # cards from before calibration have none
    except (KeyError, TypeError, ValueError) as error:
        raise ModelError(f"{path}: malformed model card (needs source.sha256, exports, a numeric threshold): "
                         f"{error!r}") from None
    if not isinstance(source_sha, str) or not isinstance(exports, dict) or not 0.0 < threshold < 1.0 \
            or not (np.isfinite(temperature) and temperature > 0):
        raise ModelError(f"{path}: malformed model card: source.sha256 must be a string, exports an object, "
                         f"threshold in (0, 1) and output.temperature a positive number")
    return {**card, "threshold": threshold, "temperature": temperature}


def _export_entry(card: dict[str, Any], export_dir: Path, variant: str) -> tuple[Path, str]:
    """(file, expected SHA-256) of one exported variant, which must exist inside export_dir."""
    card_path = export_dir / MODEL_CARD_NAME
    entry = card["exports"].get(variant)
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or not isinstance(entry.get("sha256"),
                                                                                                str):
        available = sorted(name for name in card["exports"] if name in TFLITE_VARIANTS)
        raise ModelError(f"{card_path}: no {variant!r} export (this card has: {', '.join(available) or 'none'})")
    path = export_dir / entry["file"]
    if not path.resolve().is_relative_to(export_dir.resolve()):
        raise ModelError(f"{card_path}: exports.{variant}.file {entry['file']!r} points outside {export_dir}")
    if not path.is_file():
        raise ModelError(f"{path} not found (listed in {card_path}): re-run the export stage")
    return path, entry["sha256"]


def _quantize(batch: np.ndarray, details: dict[str, Any]) -> np.ndarray:
    """The batch in the input tensor's type: quantized with its scale and zero point if integer."""
    dtype = np.dtype(details["dtype"])
    if not np.issubdtype(dtype, np.integer):
        return batch.astype(dtype, copy=False)
    scale, zero_point = details["quantization"]
    limits = np.iinfo(dtype)
    quantized = np.round(batch / scale + zero_point) if scale else batch
    return np.clip(quantized, limits.min, limits.max).astype(dtype)


def _dequantize(values: np.ndarray, details: dict[str, Any]) -> np.ndarray:
    """float64 scores from the output tensor, undoing integer quantization if there is any."""
    scale, zero_point = details["quantization"]
    if np.issubdtype(values.dtype, np.integer) and scale:
        return (values.astype(np.float64) - zero_point) * scale
    return values.astype(np.float64)


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
