"""The one face crop: what the model scores of a detected face, the same in the API, the UI and the CLI.

Two ways (serve.face_crop):
- "native" (the default): a square around the face (its box grown by the margin on every side) at the image's
  own resolution; the model then takes it as it takes a whole image (inference.images.fit_for_model: with the
  crop fit, the center square, no resampling). With the crop fit the square is at least the model's input
  size, so a small face comes with context around it rather than enlarged (resampled). The detector reads
  up-sampling traces on the pixel grid, and a crop that keeps the grid keeps them: the locked model scores
  such crops of the demo test faces at ROC AUC 1.000, as it does its own center crops (docs/faces.md).
- "aligned": as face-forensics pipelines do (face_alignment.py): eyes levelled, a fixed eye distance and eye
  line, a fixed output size. Every pixel is resampled; the same model scores those crops at AUC 0.677, so
  this way is for a model trained on aligned crops.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deepfake_detector.contracts.faces import FACE_CROPS
from deepfake_detector.inference.boxes import Box
from deepfake_detector.inference.face_alignment import align_face
from deepfake_detector.inference.face_detection import Face
from deepfake_detector.inference.images import fit_for_model


@dataclass(frozen=True)
class FaceCrop:
    """The model's input for one face, and the region of the image it shows (for answers and overlays)."""

    pixels: np.ndarray  # float32 (S, S, 3) in [0, 255]
    box: Box            # the region scored; for an aligned crop, the bounding box of the turned square
    matrix: np.ndarray | None = None  # aligned only: 2 x 3, image (x, y, 1) -> crop (x, y)


@dataclass(frozen=True)
class FaceRegion:
    """The 8-bit pixels a face crop is made of, before the model's fit: what the faces stage stores (losslessly),
    so that training decodes and fits exactly what serving fits (fit_for_model(pixels) == crop_face's pixels)."""

    pixels: np.ndarray  # uint8 (h, w, 3)
    box: Box
    matrix: np.ndarray | None = None


def select_faces(faces: Sequence[Face], min_size: int, policy: str = "largest") -> list[Face]:
    """The faces at least min_size on their longer side, largest first; only the largest with the "largest"
    policy (the one a training image is labelled by)."""
    kept = sorted((face for face in faces if max(face.width, face.height) >= min_size),
                  key=lambda face: face.area, reverse=True)
    return kept[:1] if policy == "largest" else kept


def crop_face(image: np.ndarray, face: Face, size: int, *, mode: str = "native", margin: float = 0.2,
              fit: str = "crop") -> FaceCrop:
    """The model's size x size input for `face` in the RGB uint8 image (see the module docstring)."""
    region = face_region(image, face, size, mode=mode, margin=margin, fit=fit)
    pixels = region.pixels.astype(np.float32) if region.matrix is not None else fit_for_model(region.pixels, size, fit)
    return FaceCrop(pixels, region.box, region.matrix)


def face_region(image: np.ndarray, face: Face, size: int, *, mode: str = "native", margin: float = 0.2,
                fit: str = "crop") -> FaceRegion:
    """The pixels crop_face fits to the model: the aligned size x size face, or the part of the face square the
    model sees (Box.seen_by_model) at the image's own resolution."""
    height, width = image.shape[:2]
    if mode not in FACE_CROPS:
        raise ValueError(f"face crop {mode!r}: expected one of {', '.join(FACE_CROPS)}")
    if mode == "aligned" and _eyes_apart(face):
        aligned = align_face(image, face, size)
        return FaceRegion(aligned.pixels, _bounding_box(aligned.matrix, size, width, height), aligned.matrix)
    # Native, or aligned for a face whose eyes the detector put on one point: no eye line to level. With the crop
    # fit, a face smaller than the model's input is shown with context around it up to that size, never enlarged:
    # an enlarged face would be resampled, and the traces the detector reads with it.
    min_side = size if fit == "crop" else 0
    scored = face_square(face, margin, width, height, min_side).seen_by_model(size, fit)
    return FaceRegion(scored.crop(image), scored)


def whole_image_region(image: np.ndarray, size: int, fit: str = "crop") -> FaceRegion:
    """What is scored of an image without a face: the part of the whole image the model sees."""
    height, width = image.shape[:2]
    scored = Box(0, 0, width, height).seen_by_model(size, fit)
    return FaceRegion(scored.crop(image), scored)


def heatmap_in_box(crop: FaceCrop, heatmap: np.ndarray) -> np.ndarray:
    """A heatmap over the crop's pixels as it lies on crop.box in the image: a native crop is its box; an
    aligned crop is warped back through its alignment, so the map sits on the turned square (zero around it)."""
    if crop.matrix is None:
        return heatmap
    import cv2

    side = crop.pixels.shape[0]
    box = crop.box
    # Box pixels -> crop pixels: the alignment, with the box's corner as the origin.
    matrix = crop.matrix.copy()
    matrix[:, 2] += matrix[:, :2] @ np.array([box.x, box.y], dtype=np.float64)
    over_crop = cv2.resize(np.asarray(heatmap, dtype=np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
    return cv2.warpAffine(over_crop, matrix, (box.width, box.height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


def face_square(face: Face, margin: float, image_width: int, image_height: int, min_side: int = 0) -> Box:
    """The square centred on the face whose side is its longer side grown by margin x side at each end (at least
    min_side), moved inside the image where it fits and clipped where it does not."""
    side = max(round(max(face.width, face.height) * (1 + 2 * margin)), min_side)
    centre_x, centre_y = face.x + face.width / 2, face.y + face.height / 2
    left = _inside(round(centre_x - side / 2), side, image_width)
    top = _inside(round(centre_y - side / 2), side, image_height)
    return Box(left, top, min(side, image_width - left), min(side, image_height - top))


def _eyes_apart(face: Face) -> bool:
    (right_x, right_y), (left_x, left_y) = face.landmarks["right_eye"], face.landmarks["left_eye"]
    return bool(np.hypot(left_x - right_x, left_y - right_y) >= 1.0)


def _inside(start: int, side: int, extent: int) -> int:
    """The start of a side-long span moved to lie within [0, extent) when it fits, else 0."""
    return max(0, min(start, extent - side))


def _bounding_box(matrix: np.ndarray, size: int, image_width: int, image_height: int) -> Box:
    """The image region an aligned crop covers: its corners taken back through the similarity transform."""
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
    points = corners @ inverse.T
    left, top = np.clip(np.floor(points.min(axis=0)), 0, [image_width, image_height]).astype(int)
    right, bottom = np.clip(np.ceil(points.max(axis=0)), 0, [image_width, image_height]).astype(int)
    return Box(int(left), int(top), int(right - left), int(bottom - top))
