"""Optional face finding before scoring: OpenCV's Haar frontal-face cascade, loaded once per process.

The detector is trained on upright frontal faces, the kind the model was trained on; it returns
boxes only (no confidence), largest first.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepfake_detector.contracts.errors import ModelError

CASCADE_FILE = "haarcascade_frontalface_default.xml"


@dataclass(frozen=True)
class Box:
    """A rectangle in image pixels: left, top, width, height."""

    x: int
    y: int
    width: int
    height: int

    @property
    def area(self) -> int:
        return self.width * self.height

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.width, self.height]

    def with_margin(self, margin: float, image_width: int, image_height: int) -> Box:
        """The box grown by margin x its side on every edge, clipped to the image."""
        grow_x, grow_y = round(self.width * margin), round(self.height * margin)
        left, top = max(0, self.x - grow_x), max(0, self.y - grow_y)
        right = min(image_width, self.x + self.width + grow_x)
        bottom = min(image_height, self.y + self.height + grow_y)
        return Box(left, top, right - left, bottom - top)

    def crop(self, image: np.ndarray) -> np.ndarray:
        return image[self.y:self.y + self.height, self.x:self.x + self.width]

    def seen_by_model(self, size: int, fit: str) -> Box:
        """The part of this box the model scores: with the crop fit, its center size x size square when both
        sides are at least size (as inference.images.fit_for_model crops); otherwise the whole box."""
        if fit != "crop" or self.width < size or self.height < size:
            return self
        return Box(self.x + (self.width - size) // 2, self.y + (self.height - size) // 2, size, size)


class FaceDetector:
    """Finds frontal faces in RGB images; one cascade shared by every request thread."""

    def __init__(self, min_size: int, cascade_file: str | Path | None = None):
        import cv2

        path = Path(cascade_file) if cascade_file else Path(cv2.data.haarcascades) / CASCADE_FILE
        cascade = cv2.CascadeClassifier(str(path))
        if cascade.empty():
            raise ModelError(f"cannot load the face detector from {path}")
        self._cv2 = cv2
        self._cascade = cascade
        self._min_size = int(min_size)
        # OpenCV does not promise that one CascadeClassifier may run in several threads at once.
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> list[Box]:
        """Face boxes at least min_size pixels on a side, largest first (empty when none)."""
        height, width = image.shape[:2]
        if min(height, width) < self._min_size:
            return []
        gray = self._cv2.equalizeHist(self._cv2.cvtColor(image, self._cv2.COLOR_RGB2GRAY))
        with self._lock:
            found = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                                   minSize=(self._min_size, self._min_size))
        boxes = [Box(int(x), int(y), int(w), int(h)) for x, y, w, h in np.asarray(found).reshape(-1, 4)]
        return sorted(boxes, key=lambda box: box.area, reverse=True)
