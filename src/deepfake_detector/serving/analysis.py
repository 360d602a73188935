"""The service's answer for one image, typed. `as_api_dict` is the JSON API's results[] entry, the one
place that shape is written; the legacy route and the CLI read the fields they need."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deepfake_detector.contracts.labels import CLASS_NAMES, FAKE
from deepfake_detector.inference.boxes import Box


@dataclass(frozen=True)
class FaceScore:
    """One face the detector found and its own P(fake)."""

    box: Box
    fake_probability: float
    label: str
    score: float | None = None                              # the detector's confidence
    landmarks: dict[str, list[float]] | None = None         # eyes, nose tip, mouth, ears: [x, y] in pixels

    def as_api_dict(self) -> dict[str, Any]:
        return {"box": self.box.as_list(), "score": self.score, "landmarks": self.landmarks,
                "fake_probability": self.fake_probability, "label": self.label}


@dataclass(frozen=True)
class Heatmap:
    """Where the decisive region's score came from, as a PNG overlay for that region."""

    method: str          # "grad-cam" or "occlusion"
    box: Box             # the region the heatmap covers, in the original image
    png_data_url: str

    def as_api_dict(self) -> dict[str, Any]:
        return {"method": self.method, "box": self.box.as_list(), "png": self.png_data_url}


@dataclass(frozen=True)
class Timings:
    """Milliseconds spent in each step of one analysis."""

    decode: float
    faces: float
    predict: float
    explain: float
    total: float

    def as_api_dict(self) -> dict[str, float]:
        return {"decode": self.decode, "faces": self.faces, "predict": self.predict, "explain": self.explain,
                "total": self.total}


def verdict_fields(analysis: Any, kind: str) -> dict[str, Any]:
    """The fields every results[] entry starts with, image or video."""
    return {"filename": analysis.filename, "kind": kind, "label": analysis.label,
            "fake_probability": analysis.fake_probability, "threshold": analysis.threshold,
            "model_version": analysis.model_version, "backend": analysis.backend, "width": analysis.width,
            "height": analysis.height}


@dataclass(frozen=True)
class ImageAnalysis:
    """One image's verdict: the decisive P(fake), its label under the served rule, and how it was found."""

    filename: str
    label: str
    fake_probability: float
    threshold: float
    model_version: str
    backend: str
    width: int
    height: int
    scored_region: str                   # "whole_image", "center" (crop fit, larger image), "face" or "faces"
    faces: tuple[FaceScore, ...]
    timings: Timings
    note: str | None = None
    heatmap: Heatmap | None = None       # only when an explanation was asked for

    @property
    def is_fake(self) -> bool:
        return self.label == CLASS_NAMES[FAKE]

    def as_api_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            **verdict_fields(self, "image"),
            "scored_region": self.scored_region,
            "faces": [face.as_api_dict() for face in self.faces],
        }
        if self.note is not None:
            answer["note"] = self.note
        if self.heatmap is not None:
            answer["heatmap"] = self.heatmap.as_api_dict()
        answer["timings_ms"] = self.timings.as_api_dict()
        return answer
