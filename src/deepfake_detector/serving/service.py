"""The detector as a service: one loaded, warmed-up model plus optional face finder, answering
"is this image fake?" for the web API and the `deepfake-detector predict` command alike.

Built once per process (DetectionService.from_config); analyze() is thread-safe and keeps no
per-request state. No Flask here.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepfake_detector.config.entities import ServingConfig
from deepfake_detector.contracts.export_layout import MODEL_CARD_NAME
from deepfake_detector.contracts.labels import CLASS_NAMES, FAKE, POSITIVE_CLASS, REAL
from deepfake_detector.inference.images import resize_for_model
from deepfake_detector.serving.faces import Box, FaceDetector
from deepfake_detector.serving.heatmaps import heatmap_png_data_url
from deepfake_detector.serving.settings import apply_environment
from deepfake_detector.serving.uploads import decode_upload
from deepfake_detector.utils.files import sha256_file

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5
VERSION_LENGTH = 12


@dataclass(frozen=True)
class ModelFacts:
    """What the files beside the model say about it: version, threshold, metrics, card."""

    model_version: str
    threshold: float
    threshold_source: str
    temperature: float                 # calibration the predictor applies to every P(fake)
    card: Mapping[str, Any] | None
    test_metrics: Mapping[str, Any] | None


class DetectionService:
    """A loaded predictor and what it needs to answer: threshold, version, face detector, caps."""

    def __init__(self, config: ServingConfig, predictor: Any, facts: ModelFacts,
                 face_detector: FaceDetector | None = None):
        self.config = config
        self.predictor = predictor
        self.face_detector = face_detector
        self.facts = facts
        self.backend: str = predictor.backend
        self.variant: str = predictor.variant
        self.threshold: float = facts.threshold
        self.model_version: str = facts.model_version
        self.image_size: int = int(predictor.image_size)

    @classmethod
    def from_config(cls, config: ServingConfig, environ: Mapping[str, str] | None = None) -> DetectionService:
        """Load, describe and warm up the model named by config and the DEEPFAKE_DETECTOR_* environment.

        Raises ModelError when no model can be loaded, ConfigError for a bad override.
        """
        from deepfake_detector.inference import load_predictor

        config = apply_environment(config, os.environ if environ is None else environ)
        started = time.perf_counter()
        predictor = load_predictor(config.model_file, export_dir=config.export_dir, backend=config.backend,
                                   variant=config.variant, num_threads=config.num_threads)
        facts = describe_model(config, Path(predictor.model_path))
        predictor.temperature = facts.temperature
        face_detector = FaceDetector(config.face_min_size) if config.face_detector == "haar" else None
        predictor.warm_up()
        logger.info("model ready: %s (%s %s, version %s, threshold %.4f from %s) in %.1f s",
                    Path(predictor.model_path).name, predictor.backend, predictor.variant, facts.model_version,
                    facts.threshold, facts.threshold_source, time.perf_counter() - started)
        return cls(config, predictor, facts, face_detector)

    def analyze(self, data: bytes, name: str = "uploaded image", explain: bool = False) -> dict[str, Any]:
        """One image's verdict (the API's results[] entry). Raises ImageError for bad input."""
        clock = _Clock()
        image = decode_upload(data, name, max_bytes=self.config.max_request_bytes,
                              max_pixels=self.config.max_image_pixels)
        height, width = image.shape[:2]
        clock.lap("decode")

        faces = self._find_faces(image)
        clock.lap("faces")
        if faces:
            regions = [face.with_margin(self.config.face_margin, width, height) for face in faces]
        else:
            regions = [Box(0, 0, width, height)]
        batch = np.stack([resize_for_model(region.crop(image), self.image_size) for region in regions])
        probabilities = [float(p) for p in np.asarray(self.predictor.predict(batch)).reshape(-1)]
        decisive = int(np.argmax(probabilities))
        p_fake = probabilities[decisive]
        clock.lap("predict")

        result: dict[str, Any] = {
            "filename": name,
            "label": self.label(p_fake),
            "fake_probability": p_fake,
            "threshold": self.threshold,
            "model_version": self.model_version,
            "backend": self.backend,
            "width": width,
            "height": height,
            "scored_region": "whole_image" if not faces else ("face" if len(faces) == 1 else "faces"),
            "faces": [{"box": face.as_list(), "score": None, "fake_probability": p, "label": self.label(p)}
                      for face, p in zip(faces, probabilities, strict=True)] if faces else [],
        }
        if self.face_detector is not None and not faces:
            result["note"] = "no face found: the whole image was scored"
        if explain:
            explanation = self.predictor.explain(batch[decisive], threshold=self.threshold)
            result["heatmap"] = {"method": explanation.method, "box": regions[decisive].as_list(),
                                 "png": heatmap_png_data_url(explanation.heatmap)}
            clock.lap("explain")
        result["timings_ms"] = clock.timings()
        return result

    def label(self, p_fake: float) -> str:
        """"fake" at or above the threshold, as the evaluate stage decided."""
        return CLASS_NAMES[FAKE] if p_fake >= self.threshold else CLASS_NAMES[REAL]

    def model_info(self) -> dict[str, Any]:
        """What /api/v1/model reports: which model answers, how it decides, how good it was on test."""
        card = self.facts.card or {}
        dataset = card.get("dataset") or {}
        config = self.config
        return {
            "model_version": self.model_version,
            "backend": self.backend,
            "variant": self.variant,
            "model_file": Path(self.predictor.model_path).name,
            "input_size": self.image_size,
            "input": card.get("input") or {"shape": [None, self.image_size, self.image_size, 3],
                                           "channel_order": "RGB", "value_range": [0.0, 255.0]},
            "positive_class": POSITIVE_CLASS,
            "threshold": self.threshold,
            "threshold_source": self.facts.threshold_source,
            "temperature": self.facts.temperature,
            "test_metrics": dict(self.facts.test_metrics or {}),
            "training_data_sha256": dataset.get("manifest_sha256"),
            "dataset": dataset or None,
            "architecture": card.get("architecture"),
            "exports": card.get("exports"),
            "created": card.get("created"),
            "face_detector": {"detector": config.face_detector, "policy": config.face_policy,
                              "min_size": config.face_min_size, "margin": config.face_margin},
        }

    def _find_faces(self, image: np.ndarray) -> list[Box]:
        if self.face_detector is None:
            return []
        faces = self.face_detector.detect(image)
        return faces[:1] if self.config.face_policy == "largest" else faces


def describe_model(config: ServingConfig, served_file: Path) -> ModelFacts:
    """Version, threshold and metrics of the served model from the model card, model.h5 and scores.json.

    The card speaks for the model only when the served file is one of its exports or its recorded
    source hash is the model.h5 being served; otherwise (retrained, not re-exported) it is ignored.
    """
    card = _read_json(config.export_dir / MODEL_CARD_NAME)
    card_source = str(((card or {}).get("source") or {}).get("sha256") or "")
    from_export = _is_within(served_file, config.export_dir)
    if from_export or not config.model_file.is_file():
        model_sha = card_source or sha256_file(served_file)
    else:
        model_sha = sha256_file(config.model_file)
    card_applies = card is not None and card_source == model_sha
    if card is not None and not card_applies:
        logger.warning("%s describes another model (source %s, serving %s): ignoring it",
                       config.export_dir / MODEL_CARD_NAME, card_source[:VERSION_LENGTH], model_sha[:VERSION_LENGTH])
    scores = _read_json(config.scores_file)
    threshold, source = _choose_threshold(config, card if card_applies else None, scores)
    metrics = scores
    if metrics is None and card_applies:
        metrics = card.get("test_metrics")
    return ModelFacts(model_version=model_sha[:VERSION_LENGTH], threshold=threshold, threshold_source=source,
                      temperature=_choose_temperature(card if card_applies else None, scores),
                      card=card if card_applies else None, test_metrics=metrics)


def _choose_temperature(card: Mapping[str, Any] | None, scores: Mapping[str, Any] | None) -> float:
    """The card's temperature, else scores.json's, else 1.0 (uncalibrated): from the same files the
    threshold comes from, since the threshold is set on the calibrated P(fake)."""
    candidates = [(card.get("output") or {}).get("temperature")] if card is not None else []
    if scores is not None:
        candidates.append(scores.get("temperature"))
    for value in candidates:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 < float(value) < float("inf"):
            return float(value)
    return 1.0


def _choose_threshold(config: ServingConfig, card: Mapping[str, Any] | None,
                      scores: Mapping[str, Any] | None) -> tuple[float, str]:
    if config.threshold is not None:
        return float(config.threshold), "params.yaml serve.threshold"
    candidates = []
    if card is not None:
        candidates += [(card.get("threshold"), MODEL_CARD_NAME),
                       ((card.get("output") or {}).get("threshold"), MODEL_CARD_NAME)]
    if scores is not None:
        candidates.append((scores.get("threshold"), config.scores_file.name))
    for value, source in candidates:
        if isinstance(value, (int, float)) and 0.0 < float(value) < 1.0:
            return float(value), source
    logger.warning("no decision threshold in %s or %s: using %.1f; run the evaluate and export stages",
                   config.export_dir / MODEL_CARD_NAME, config.scores_file, DEFAULT_THRESHOLD)
    return DEFAULT_THRESHOLD, "default"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        logger.warning("cannot read %s: %s", path, error)
        return None
    return payload if isinstance(payload, dict) else None


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


class _Clock:
    """Milliseconds spent in each step of one analysis."""

    STEPS = ("decode", "faces", "predict", "explain")

    def __init__(self):
        self._start = self._last = time.perf_counter()
        self._laps = dict.fromkeys(self.STEPS, 0.0)

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self._laps[step] += (now - self._last) * 1000.0
        self._last = now

    def timings(self) -> dict[str, float]:
        total = (time.perf_counter() - self._start) * 1000.0
        return {**{step: round(ms, 3) for step, ms in self._laps.items()}, "total": round(total, 3)}
