"""Predictors: one trained model behind a thread-safe predict/explain interface, and its TFLite backend
(no TensorFlow in the process). The Keras backend is in keras_backend.py; served_model.py picks one.
"""
from __future__ import annotations

import abc
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepfake_detector.contracts.decision_rule import DEFAULT_RULE, DecisionRule
from deepfake_detector.contracts.errors import ModelError
from deepfake_detector.contracts.input_fit import INPUT_FITS, LEGACY_INPUT_FIT
from deepfake_detector.contracts.temperature import apply_temperature
from deepfake_detector.inference.explanations import occlusion_map
from deepfake_detector.inference.images import load_image
from deepfake_detector.utils.cpus import usable_cores


@dataclass(frozen=True)
class Explanation:
    heatmap: np.ndarray  # float32 (S, S) in [0, 1]: how much each pixel's region drove the prediction
    method: str          # "grad-cam" or "occlusion"
    p_fake: float        # the prediction being explained


class Predictor(abc.ABC):
    """One loaded model: float32 RGB batches in [0, 255] in, P(fake) out. Safe to share between threads.

    `rule` is the process's one decision rule: its temperature calibrates every P(fake) returned (the
    evaluate stage's temperature scaling), its threshold decides which class an explanation argues for.
    Everything else that decides (the service, the CLI) reads it from here. `input_fit` is how images
    become the model's input (contracts/input_fit.py), as the model was trained; the model card says it.
    """

    backend: str = ""
    # Larger batches are split. A TFLite interpreter keeps the arena of the largest batch it ran
    # (about 6 MB per image at 224 px, alpha 1.0), so this bounds each thread's memory; batches
    # beyond 8 gain little throughput on a CPU.
    max_batch_size = 8
    occlusion_grid = 8        # occlusion explanations hide 8 x 8 patches, one at a time

    def __init__(self, model_path: Path, image_size: int, variant: str, rule: DecisionRule = DEFAULT_RULE,
                 input_fit: str = LEGACY_INPUT_FIT):
        if input_fit not in INPUT_FITS:
            raise ValueError(f"unknown input fit {input_fit!r}: expected one of {', '.join(INPUT_FITS)}")
        self.model_path = Path(model_path)
        self.image_size = int(image_size)
        self.variant = variant
        self.rule = rule
        self.input_fit = input_fit

    def predict(self, images: np.ndarray) -> np.ndarray:
        """float64 (N,) calibrated P(fake) for a float32 (N, S, S, 3) batch of raw RGB pixels; N may be 0."""
        return self.rule.calibrate(self._predict_raw(images))

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
        """P(fake) of one encoded image (bytes or a path), decoded and fitted to the model as in training."""
        return float(self.predict(load_image(source, self.image_size, fit=self.input_fit)[None])[0])

    def explain(self, image: np.ndarray, threshold: float | None = None) -> Explanation:
        """A heatmap of the regions behind the prediction for one (S, S, 3) image, arguing for the class
        the rule decides (or the class a given threshold on the calibrated P(fake) decides)."""
        pixels = np.asarray(image)
        expected = (self.image_size, self.image_size, 3)
        if pixels.shape != expected:
            raise ValueError(f"expected one image of shape {expected}, got {pixels.shape}")
        # Backends explain the raw output, so they get the same decision boundary in raw terms.
        if threshold is None:
            raw_threshold = self.rule.raw_threshold
        else:
            raw_threshold = float(apply_temperature(float(threshold), 1.0 / self.rule.temperature))
        heatmap, raw_p_fake, method = self._explain(pixels.astype(np.float32, copy=False), raw_threshold)
        return Explanation(heatmap=heatmap, method=method, p_fake=float(self.rule.calibrate(raw_p_fake)))

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

    Interpreters are not thread-safe. By default each prediction running at once gets an interpreter of its own,
    taken from a pool that grows to the most predictions ever run at once (not the most threads: a server thread
    that only waited for a slot never adds one): calls never wait for each other, and all interpreters share one
    in-memory copy of the model file, but each holds its own tensor arena (activations, growing with the batch) and
    its own packed weights: about 17 MB more each for the float32 224 px alpha 1.0 model at batch 1.
    With per_thread_interpreters=False one interpreter is shared behind a lock: the least memory,
    one prediction at a time. An input tensor is resized only when the batch size changes.
    """

    backend = "tflite"

    def __init__(self, model_path: str | Path, num_threads: int | None = None, variant: str | None = None, *,
                 per_thread_interpreters: bool = True, expected_sha256: str | None = None,
                 rule: DecisionRule = DEFAULT_RULE, input_fit: str = LEGACY_INPUT_FIT):
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
        # None: every core this process may use (serving passes its share instead, see serving/concurrency.py).
        self.num_threads = num_threads if num_threads is not None else usable_cores()
        self.per_thread_interpreters = per_thread_interpreters
        self._path_for_errors = path
        first = self._new_session()
        inputs, outputs = first.interpreter.get_input_details(), first.interpreter.get_output_details()
        shape = tuple(int(d) for d in inputs[0]["shape"]) if len(inputs) == 1 else ()
        if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3 or len(outputs) != 1 \
                or int(outputs[0]["shape"][-1]) != 1:
            raise ModelError(f"{path}: expected one (N, S, S, 3) image input and one (N, 1) output, got inputs "
                             f"{[list(d['shape']) for d in inputs]} and outputs {[list(d['shape']) for d in outputs]}")
        super().__init__(path, shape[1], variant or path.stem, rule, input_fit)
        self._input = inputs[0]
        self._output = outputs[0]
        self._lock = threading.Lock()  # guards the pool
        self._shared_lock = threading.Lock()  # held through each call on the one shared interpreter
        self._idle: list[_Session] = []  # the pool's interpreters no call is using now
        self._shared: _Session | None = None
        self.interpreters = 1  # how many this predictor has made
        self._generation = 0  # close() starts a new one: interpreters of an older one are not pooled again
        if per_thread_interpreters:
            self._idle.append(first)
        else:
            self._shared = first

    def close(self) -> None:
        """Drop every interpreter; one a call is still using is dropped when the call ends."""
        with self._shared_lock, self._lock:
            self._idle = []
            self._shared = None
            self._generation += 1

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
            with self._shared_lock:
                if self._shared is None:
                    self._shared = self._new_session()
                return self._run(self._shared, batch)
        with self._lock:
            session = self._idle.pop() if self._idle else None
            generation = self._generation
        if session is None:
            session = self._new_session()
            with self._lock:
                self.interpreters += 1
        try:
            return self._run(session, batch)
        finally:
            with self._lock:
                if generation == self._generation:
                    self._idle.append(session)

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

