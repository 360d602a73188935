"""From frames to one verdict: which face to follow from frame to frame, and how frame scores become the video's.

A face swap or a generated face usually covers most of a clip, but not every frame shows it equally well
(motion blur, a turned head, a cut). The aggregation rules below (named in contracts/video_aggregation.py) are the
ones video deepfake benchmarks compare; `top_k_mean` (the mean of the most fake quarter of the frames) keeps a clip
whose fake shows in a few frames from being averaged away, at the price of more false alarms than `mean` on clean
clips. The evaluate stage picks one on the validation videos (components/evaluation/video_metrics.py).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from deepfake_detector.contracts.video_aggregation import AGGREGATIONS
from deepfake_detector.inference.boxes import Box

TOP_K_SHARE = 0.25      # top_k_mean: the most fake quarter of the frames, at least one
TRACK_MIN_IOU = 0.3     # a face overlapping the followed one this much is the same face in the next frame


def top_k(count: int) -> int:
    """How many frames top_k_mean averages for a clip of `count` scored frames."""
    return max(1, math.ceil(TOP_K_SHARE * count))


def aggregate(probabilities: Sequence[float], rule: str) -> float:
    """The video's P(fake) from its frames' by the named rule (one of AGGREGATIONS)."""
    if rule not in AGGREGATIONS:
        raise ValueError(f"video aggregation {rule!r}: expected one of {', '.join(AGGREGATIONS)}")
    values = np.asarray(probabilities, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no frame scores to aggregate")
    if rule == "mean":
        return float(values.mean())
    if rule == "median":
        return float(np.median(values))
    if rule == "max":
        return float(values.max())
    return float(np.sort(values)[-top_k(values.size):].mean())


def describe(rule: str, count: int) -> str:
    """The rule in words, as answers and the model card state it."""
    if rule == "top_k_mean":
        return f"mean of the {top_k(count)} most fake of {count} frames (top {TOP_K_SHARE:.0%})"
    return {"mean": f"mean of {count} frames", "median": f"median of {count} frames",
            "max": f"most fake of {count} frames"}[rule]


def iou(first: Box, second: Box) -> float:
    """Intersection over union of two boxes (0 when either is empty)."""
    left, top = max(first.x, second.x), max(first.y, second.y)
    right = min(first.x + first.width, second.x + second.width)
    bottom = min(first.y + first.height, second.y + second.height)
    inter = max(0, right - left) * max(0, bottom - top)
    union = first.width * first.height + second.width * second.height - inter
    return inter / union if union > 0 else 0.0


class FaceTrack:
    """Follows one face through a clip: the face overlapping the last one followed (by TRACK_MIN_IOU), else the
    largest, so a second person walking past does not take over the timeline for a frame."""

    def __init__(self) -> None:
        self.last: Box | None = None

    def follow(self, boxes: Sequence[Box]) -> int | None:
        """Index into boxes (largest first, as select_faces orders them) of the face to score; None for none."""
        if not boxes:
            return None
        chosen = 0
        if self.last is not None:
            overlaps = [iou(self.last, box) for box in boxes]
            best = int(np.argmax(overlaps))
            if overlaps[best] >= TRACK_MIN_IOU:
                chosen = best
        self.last = boxes[chosen]
        return chosen
