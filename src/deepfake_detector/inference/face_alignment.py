"""One aligned face crop, the same in the faces stage, the API, the UI and the CLI.

As face-forensics pipelines do: the eyes are levelled (a rotation about their midpoint), the face is scaled so
that the eyes lie a fixed share of the crop apart, and the crop is placed so that the eye line sits at a fixed
height, leaving a margin of cheek, chin and hair around the face, where blending seams show. Pixels outside
the image repeat its edge. A similarity transform (rotation, uniform scale, shift) never distorts the face.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepfake_detector.inference.face_detection import Face

# Where the eyes land in an S x S crop: this far apart (share of S), their midpoint at (S / 2, EYE_LINE x S).
# 0.25 and 0.42 keep the whole face and about a third of its width around it.
EYE_DISTANCE = 0.25
EYE_LINE = 0.42


@dataclass(frozen=True)
class AlignedFace:
    pixels: np.ndarray       # uint8 (S, S, 3)
    matrix: np.ndarray       # 2 x 3: image (x, y, 1) -> crop (x, y)


def alignment_matrix(face: Face, size: int, eye_distance: float = EYE_DISTANCE,
                     eye_line: float = EYE_LINE) -> np.ndarray:
    """The 2 x 3 similarity transform taking the image to the aligned size x size crop of `face`."""
    (right_x, right_y), (left_x, left_y) = face.landmarks["right_eye"], face.landmarks["left_eye"]
    # The subject's right eye is on the image's left: the vector between them points right when level.
    dx, dy = left_x - right_x, left_y - right_y
    distance = float(np.hypot(dx, dy))
    if distance < 1e-6:
        raise ValueError("the two eyes are at the same point: no alignment")
    scale = eye_distance * size / distance
    cos, sin = scale * dx / distance, scale * dy / distance
    middle_x, middle_y = (right_x + left_x) / 2, (right_y + left_y) / 2
    # Rotate by -angle and scale about the eye midpoint, then move it to its place in the crop.
    return np.array([
        [cos, sin, size / 2 - (cos * middle_x + sin * middle_y)],
        [-sin, cos, eye_line * size - (-sin * middle_x + cos * middle_y)],
    ], dtype=np.float64)


def align_face(image: np.ndarray, face: Face, size: int) -> AlignedFace:
    """The aligned size x size crop of `face` in the RGB uint8 image (bilinear, edges repeated)."""
    import cv2

    matrix = alignment_matrix(face, size)
    pixels = cv2.warpAffine(np.ascontiguousarray(image[..., :3]), matrix, (size, size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    return AlignedFace(pixels, matrix)
