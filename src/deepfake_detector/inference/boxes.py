"""Rectangles in image pixels: the regions a server scores, crops and draws (faces, the center square)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Box:
    """A rectangle in image pixels: left, top, width, height."""

    x: int
    y: int
    width: int
    height: int

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.width, self.height]

    def crop(self, image: np.ndarray) -> np.ndarray:
        return image[self.y:self.y + self.height, self.x:self.x + self.width]

    def seen_by_model(self, size: int, fit: str) -> Box:
        """The part of this box the model scores: with the crop fit, its center size x size square when both
        sides are at least size (as inference.images.fit_for_model crops); otherwise the whole box."""
        if fit != "crop" or self.width < size or self.height < size:
            return self
        return Box(self.x + (self.width - size) // 2, self.y + (self.height - size) // 2, size, size)
