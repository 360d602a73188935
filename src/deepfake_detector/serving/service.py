"""The detector as a service: one loaded, warmed-up model plus optional face finder, answering
"is this image fake?" for the web API and the `deepfake-detector predict` command alike.

Built once per process (DetectionService.from_config); analyze() is thread-safe and keeps no
per-request state. No Flask here.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from deepfake_detector.config.entities import ServingConfig
from deepfake_detector.contracts.decision_rule import DecisionRule
from deepfake_detector.contracts.labels import POSITIVE_CLASS
from deepfake_detector.inference.boxes import Box
from deepfake_detector.inference.face_crop import crop_face, heatmap_in_box, select_faces, whole_image_region
from deepfake_detector.inference.face_detection import DETECTOR_MODELS, Face, FaceDetector
from deepfake_detector.inference.images import fit_for_model, load_model_input
from deepfake_detector.inference.served_model import ServedModel, load_served_model
from deepfake_detector.serving.admission import check_deadline
from deepfake_detector.serving.analysis import FaceScore, Heatmap, ImageAnalysis, Timings
from deepfake_detector.serving.concurrency import plan_threads
from deepfake_detector.serving.heatmaps import heatmap_png_data_url
from deepfake_detector.serving.settings import apply_environment
from deepfake_detector.serving.training_data import TrainingData
from deepfake_detector.serving.uploads import decode_upload
from deepfake_detector.serving.video_analysis import VideoAnalysis, analyze_video
from deepfake_detector.serving.video_rule import VideoRule, video_rule_as_evaluated
from deepfake_detector.video.decoding import SNIFF_BYTES, sniff_video

logger = logging.getLogger(__name__)

NO_EVALUATION_NOTE = ("no evaluation matches the served model (its model card and scores.json describe "
                      "another model, or are absent): test metrics unknown")


class DetectionService:
    """The served model (its predictor holds the decision rule) plus a face detector and the request caps."""

    def __init__(self, config: ServingConfig, model: ServedModel, face_detector: FaceDetector | None = None):
        self.config = config
        self.model = model
        self.predictor = model.predictor
        self.face_detector = face_detector
        self.interpreter_threads = 1  # from_config sets this process's share of the cores (the video decoder's too)
        self.backend: str = self.predictor.backend
        self.variant: str = self.predictor.variant
        self.model_version: str = model.version
        self.image_size: int = int(self.predictor.image_size)
        self.training_data = TrainingData.of(model.card)
        self.video_rule: VideoRule = video_rule_as_evaluated(config, model)

    @property
    def rule(self) -> DecisionRule:
        """The one decision rule of this process, as loaded with the model."""
        return self.model.rule

    @property
    def threshold(self) -> float:
        return self.rule.threshold

    @classmethod
    def from_config(cls, config: ServingConfig, environ: Mapping[str, str] | None = None) -> DetectionService:
        """Load, describe and warm up the model named by config and the DEEPFAKE_DETECTOR_* overrides in environ
        (default: os.environ), with interpreter threads sized to this process's share of the cores: the server's
        shape (WEB_CONCURRENCY, GUNICORN_THREADS) is always read from os.environ (concurrency.py).

        Raises ModelError when no model can be loaded, ConfigError for a bad override.
        """
        config = apply_environment(config, os.environ if environ is None else environ)
        started = time.perf_counter()
        threads = plan_threads(config)
        logger.info("TFLite interpreter threads per inference: %d (%s)", threads.interpreter_threads, threads.reason)
        model = load_served_model(config.model_file, export_dir=config.export_dir, backend=config.backend,
                                  variant=config.variant, num_threads=threads.interpreter_threads,
                                  scores_file=config.scores_file, threshold=config.threshold,
                                  input_fit=config.input_fit)
        config = faces_as_trained(config, model)
        face_detector = None
        if config.face_detector != "off":
            import cv2

            # OpenCV's own pool (letterboxing, the aligned warp) gets the same share of the cores as an inference.
            cv2.setNumThreads(threads.interpreter_threads)
            face_detector = FaceDetector(DETECTOR_MODELS[config.face_detector],
                                         num_threads=threads.interpreter_threads)
        model.predictor.warm_up()
        service = cls(config, model, face_detector)
        service.interpreter_threads = threads.interpreter_threads
        logger.info("model ready: %s (%s %s, version %s, threshold %.4f from %s, trained on %s) in %.1f s%s",
                    model.predictor.model_path.name, model.predictor.backend, model.predictor.variant,
                    model.version, model.rule.threshold, model.rule.source, service.training_data.describe(),
                    time.perf_counter() - started,
                    f". {service.training_data.notice}" if service.training_data.notice else "")
        return service

    def analyze_upload(self, data: bytes, name: str = "upload", explain: bool = False
                       ) -> ImageAnalysis | VideoAnalysis:
        """An image's or a video's verdict, told apart by the content (never the name). Raises ImageError (its
        VideoError kind for a video) for bad input."""
        if sniff_video(data[:SNIFF_BYTES]) is not None:
            return analyze_video(self, data, name, explain)
        return self.analyze(data, name, explain)

    def analyze(self, data: bytes, name: str = "uploaded image", explain: bool = False) -> ImageAnalysis:
        """One image's verdict. Raises ImageError for bad input."""
        clock = _Clock()
        fit = self.predictor.input_fit
        if self.face_detector is None:
            # Only what the model sees is converted: a 40 MP upload costs its decode, not float copies of it.
            loaded = load_model_input(data, self.image_size, fit=fit, max_bytes=self.config.max_request_bytes,
                                      max_pixels=self.config.max_image_pixels, name=name, upright=True)
            width, height, faces, crops = loaded.width, loaded.height, [], []
            left, top, right, bottom = loaded.box or (0, 0, width, height)
            regions = [Box(left, top, right - left, bottom - top)]
            batch = loaded.pixels[None]
            clock.lap("decode")
        else:
            image = decode_upload(data, name, max_bytes=self.config.max_request_bytes,
                                  max_pixels=self.config.max_image_pixels)
            height, width = image.shape[:2]
            clock.lap("decode")
            faces = self._find_faces(image)
            clock.lap("faces")
            crops = [crop_face(image, face, self.image_size, mode=self.config.face_crop,
                               margin=self.config.face_margin, fit=fit) for face in faces]
            if crops:
                regions = [crop.box for crop in crops]
                batch = np.stack([crop.pixels for crop in crops])
            else:
                whole = whole_image_region(image, self.image_size, fit)
                regions = [whole.box]
                batch = fit_for_model(whole.pixels, self.image_size, fit)[None]
        check_deadline()  # the decode may have used up the request's time: no inference past its deadline
        probabilities = [float(p) for p in np.asarray(self.predictor.predict(batch)).reshape(-1)]
        decisive = int(np.argmax(probabilities))
        p_fake = probabilities[decisive]
        clock.lap("predict")

        # Without faces the one probability is the whole image's, not a face's.
        face_scores = tuple(FaceScore(face.box(width, height), p, self.rule.label(p), face.score,
                                      _rounded_landmarks(face))
                            for face, p in zip(faces, probabilities, strict=True)) if faces else ()
        heatmap = None
        if explain:
            explanation = self.predictor.explain(batch[decisive])
            # An aligned face's map is turned back onto the image, where the page lays it.
            overlay = heatmap_in_box(crops[decisive], explanation.heatmap) if crops else explanation.heatmap
            heatmap = Heatmap(method=explanation.method, box=regions[decisive],
                              png_data_url=heatmap_png_data_url(overlay))
            clock.lap("explain")
        return ImageAnalysis(
            filename=name, label=self.rule.label(p_fake), fake_probability=p_fake, threshold=self.threshold,
            model_version=self.model_version, backend=self.backend, width=width, height=height,
            scored_region=_scored_region(faces, regions[0], width, height), faces=face_scores,
            note=self._no_face_note(regions[0]) if self.face_detector is not None and not faces else None,
            heatmap=heatmap, timings=clock.timings())

    def _no_face_note(self, scored: Box) -> str:
        if scored.x or scored.y:
            return (f"no face found: the center {scored.width}x{scored.height} pixels were scored, at the image's "
                    "own resolution")
        return "no face found: the whole image was scored"

    def answer_header(self) -> dict[str, Any]:
        """Which model answered and how it decides, with the demo-data notice (or None): the fields
        around an API answer's results."""
        return {"model_version": self.model_version, "backend": self.backend, "variant": self.variant,
                "threshold": self.threshold, "notice": self.training_data.notice}

    def model_info(self) -> dict[str, Any]:
        """What /api/v1/model reports: which model answers (and why that export: variant_choice), how it decides,
        what it was trained on (with the demo-data notice), and how good it was on test, from the evaluation of
        this very model only (its card, else its scores.json; never another run's)."""
        card = self.model.card
        content = card.content if card is not None else {}
        training_data = self.training_data
        metrics = self.model.test_metrics
        config = self.config
        choice = self.model.variant_choice
        return {
            "model_version": self.model_version,
            "backend": self.backend,
            "variant": self.variant,
            "variant_choice": choice.as_dict() if choice is not None else None,
            "model_file": self.predictor.model_path.name,
            "input_size": self.image_size,
            "input": content.get("input") or {"shape": [None, self.image_size, self.image_size, 3],
                                              "channel_order": "RGB", "value_range": [0.0, 255.0]},
            "positive_class": POSITIVE_CLASS,
            "threshold": self.rule.threshold,
            "threshold_source": self.rule.source,
            "temperature": self.rule.temperature,
            "test_metrics": dict(metrics) if metrics is not None else None,
            "test_metrics_source": self.model.test_metrics_source,
            "note": None if metrics is not None else NO_EVALUATION_NOTE,
            "notice": training_data.notice,
            "training_data": training_data.describe(),
            "training_data_sha256": training_data.recorded.get("manifest_sha256"),
            "dataset": training_data.as_api_dict(),
            "architecture": content.get("architecture"),
            "exports": content.get("exports"),
            "created": content.get("created"),
            "face_detector": {"detector": config.face_detector, "crop": config.face_crop,
                              "policy": config.face_policy, "min_size": config.face_min_size,
                              "margin": config.face_margin},
            "video": self.video_rule.as_api_dict(),
        }

    def _find_faces(self, image: np.ndarray) -> list[Face]:
        """The faces the face settings keep (select_faces), largest first."""
        return select_faces(self.face_detector.detect(image), self.config.face_min_size, self.config.face_policy)


def faces_as_trained(config: ServingConfig, model: ServedModel) -> ServingConfig:
    """config with serve.face_detector "auto" resolved: the served model's face crop (its card's input.faces,
    every face setting taken from it), or off for a model trained on whole images. An explicit detector is kept;
    one that differs from the model's training is logged, since the model then sees inputs it was not trained on."""
    if model.card is not None:
        trained, source = model.card.faces, str(model.card.path)
    else:  # no card speaks for this model (the Keras backend before an export): params.yaml data.faces does
        settings = config.training_faces
        trained = None if settings is None else {"detector": settings.detector, "crop": settings.crop,
                                                 "margin": settings.margin, "min_size": settings.min_size}
        source = "params.yaml data.faces"
    if config.face_detector == "auto":
        if trained is None:
            return dataclasses.replace(config, face_detector="off")
        logger.info("faces: cropped as the model was trained (%s, %s crop, margin %s, min size %s; from %s)",
                    trained["detector"], trained["crop"], trained["margin"], trained["min_size"], source)
        return dataclasses.replace(config, face_detector=trained["detector"], face_crop=trained["crop"],
                                   face_margin=float(trained["margin"]), face_min_size=int(trained["min_size"]))
    used = None if config.face_detector == "off" else (config.face_detector, config.face_crop)
    wanted = None if trained is None else (trained["detector"], trained["crop"])
    if used != wanted:
        logger.warning("serve.face_detector %s (%s crop) differs from the model's training (%s): it scores inputs "
                       "unlike those it learned from; serve.face_detector auto follows the training",
                       config.face_detector, config.face_crop,
                       "whole images" if wanted is None else f"{wanted[0]} faces, {wanted[1]} crop")
    return config


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

    def timings(self) -> Timings:
        total = (time.perf_counter() - self._start) * 1000.0
        return Timings(**{step: round(ms, 3) for step, ms in self._laps.items()}, total=round(total, 3))


def _rounded_landmarks(face: Face) -> dict[str, list[float]]:
    return {name: [round(x, 1), round(y, 1)] for name, (x, y) in face.landmarks.items()}


def _scored_region(faces, scored: Box, width: int, height: int) -> str:
    """What the verdict is about: one face, several, the whole image, or (crop fit) the image's center square."""
    if faces:
        return "face" if len(faces) == 1 else "faces"
    return "whole_image" if (scored.width, scored.height) == (width, height) else "center"
