"""A video's verdict: sampled frames scored one by one, the followed face cropped as in an image, and the
frame scores aggregated by the served rule.

Frames stream out of the decoder (video/decoding.py) and are scored in small batches, so the memory an
analysis holds is one decoded frame, one batch of model inputs and a thumbnail per scored frame, whatever
the clip's length. The answer lists every scored frame with its timestamp, P(fake) and face box, the
aggregated P(fake) with the rule that made it and where the rule and its threshold came from (video_rule.py),
and the most fake frames (with thumbnails when explain=true, for the page to show).
"""
from __future__ import annotations

import base64
import io
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from deepfake_detector.contracts.labels import CLASS_NAMES, FAKE
from deepfake_detector.inference.boxes import Box
from deepfake_detector.inference.face_crop import crop_face, select_faces, whole_image_region
from deepfake_detector.inference.images import fit_for_model
from deepfake_detector.serving.admission import check_deadline
from deepfake_detector.serving.analysis import Timings, verdict_fields
from deepfake_detector.video.decoding import FrameSampling, VideoInfo, VideoLimits, open_video
from deepfake_detector.video.verdict import FaceTrack, aggregate, describe

if TYPE_CHECKING:
    from deepfake_detector.serving.service import DetectionService

BATCH_FRAMES = 8        # model inputs held before a prediction: 8 x 224 x 224 x 3 float32 = 4.8 MB
WORST_FRAMES = 3        # the most fake frames an answer singles out
THUMBNAIL_SIDE = 320    # longer side of a worst frame's thumbnail, in pixels
THUMBNAIL_QUALITY = 80


@dataclass(frozen=True)
class FrameScore:
    """One scored frame: when it is, its P(fake), the face followed (None: the whole frame was scored) and the
    region the model saw."""

    index: int
    timestamp_s: float
    fake_probability: float
    label: str
    region: Box
    face: Box | None
    face_score: float | None

    def as_api_dict(self) -> dict[str, Any]:
        return {"index": self.index, "timestamp_s": round(self.timestamp_s, 3),
                "fake_probability": self.fake_probability, "label": self.label,
                "face": None if self.face is None else {"box": self.face.as_list(), "score": self.face_score},
                "region": self.region.as_list()}


@dataclass(frozen=True)
class VideoAnalysis:
    """One video's verdict and its timeline."""

    filename: str
    label: str
    fake_probability: float
    threshold: float
    model_version: str
    backend: str
    info: VideoInfo
    width: int              # of the frames as scored (upright)
    height: int
    aggregation: str
    aggregation_source: str
    threshold_source: str
    frames: tuple[FrameScore, ...]
    worst_frames: tuple[int, ...]               # positions in frames, most fake first
    thumbnails: dict[int, str]                  # position in frames -> JPEG data URL (explain only)
    timings: Timings
    note: str | None = None

    @property
    def is_fake(self) -> bool:
        return self.label == CLASS_NAMES[FAKE]

    @property
    def scored_region(self) -> str:
        return "faces" if any(frame.face is not None for frame in self.frames) else "whole_frames"

    def as_api_dict(self) -> dict[str, Any]:
        info = self.info
        answer: dict[str, Any] = {
            **verdict_fields(self, "video"),
            "video": {"container": info.container, "codec": info.codec, "duration_s": info.duration_s,
                      "fps": info.fps},
            "scored_region": self.scored_region,
            "aggregation": {"rule": self.aggregation, "description": describe(self.aggregation, len(self.frames)),
                            "frames": len(self.frames), "source": self.aggregation_source,
                            "threshold_source": self.threshold_source},
            "frames_with_face": self.frames_with_face,
            "frames": [frame.as_api_dict() for frame in self.frames],
            "worst_frames": [{**self.frames[position].as_api_dict(),
                              **({"thumbnail": self.thumbnails[position]} if position in self.thumbnails else {})}
                             for position in self.worst_frames],
        }
        if self.note is not None:
            answer["note"] = self.note
        answer["timings_ms"] = self.timings.as_api_dict()
        return answer

    @property
    def frames_with_face(self) -> int:
        return sum(frame.face is not None for frame in self.frames)


def video_limits(service: DetectionService) -> VideoLimits:
    config = service.config
    return VideoLimits(max_bytes=config.max_request_bytes, max_duration_s=config.video_max_duration_s,
                       max_frame_pixels=config.video_max_frame_pixels,
                       max_frames_decoded=config.video_max_frames_decoded)


def frame_sampling(service: DetectionService) -> FrameSampling:
    config = service.config
    if config.video_fps is not None:
        return FrameSampling(count=None, max_fps=float(config.video_fps))
    return FrameSampling(count=int(config.video_frames))


def analyze_video(service: DetectionService, data: bytes, name: str = "uploaded video",
                  explain: bool = False) -> VideoAnalysis:
    """The video's verdict (see the module docstring). Raises VideoError / VideoTooLargeError for bad input."""
    started = time.perf_counter()
    spent = {"decode": 0.0, "faces": 0.0, "predict": 0.0}
    scorer = _FrameScorer(service)
    thumbnails: dict[int, bytes] = {}  # position in the scores -> JPEG; only the worst frames' are kept
    with open_video(data, video_limits(service), name, threads=service.interpreter_threads) as video:
        info = video.info
        frames = video.frames(frame_sampling(service), check=check_deadline)
        while True:
            mark = time.perf_counter()
            frame = next(frames, None)
            spent["decode"] += time.perf_counter() - mark
            if frame is None:
                break
            check_deadline()  # a long decode must not outlive the request's deadline
            mark = time.perf_counter()
            scorer.add(frame.index, frame.timestamp_s, frame.pixels)
            spent["faces"] += time.perf_counter() - mark
            if explain:
                thumbnails[len(scorer.done) + len(scorer.pending) - 1] = _thumbnail(frame.pixels)
            mark = time.perf_counter()
            if scorer.flush(full_only=True) and explain:
                _keep_worst(thumbnails, scorer.done)
            spent["predict"] += time.perf_counter() - mark
    mark = time.perf_counter()
    scorer.flush(full_only=False)
    spent["predict"] += time.perf_counter() - mark

    rule = service.video_rule
    scores = scorer.done
    p_fake = aggregate([frame.fake_probability for frame in scores], rule.aggregation)
    order = sorted(range(len(scores)), key=lambda i: scores[i].fake_probability, reverse=True)[:WORST_FRAMES]
    note = None
    if service.face_detector is not None and not any(frame.face is not None for frame in scores):
        note = "no face found in any frame: the whole frames were scored"
    height, width = scorer.frame_shape
    milliseconds = {step: round(1000 * seconds, 2) for step, seconds in spent.items()}
    timings = Timings(**milliseconds, explain=0.0, total=round(1000 * (time.perf_counter() - started), 2))
    return VideoAnalysis(
        filename=name, label=rule.label(p_fake), fake_probability=p_fake, threshold=rule.threshold,
        model_version=service.model_version, backend=service.backend, info=info, width=width, height=height,
        aggregation=rule.aggregation, aggregation_source=rule.aggregation_source,
        threshold_source=rule.threshold_source, frames=tuple(scores), worst_frames=tuple(order),
        thumbnails={position: _data_url(thumbnails[position]) for position in order} if explain else {},
        timings=timings, note=note)


class _FrameScorer:
    """Crops each frame as an image would be cropped (the followed face, or what the model sees of the whole
    frame) and predicts in batches of BATCH_FRAMES."""

    def __init__(self, service: DetectionService) -> None:
        self.service = service
        self.track = FaceTrack()
        self.pending: list[tuple[int, float, Box, Box | None, float | None, np.ndarray]] = []
        self.done: list[FrameScore] = []
        self.frame_shape = (0, 0)

    def add(self, index: int, timestamp_s: float, image: np.ndarray) -> None:
        service = self.service
        config = service.config
        size, fit = service.image_size, service.predictor.input_fit
        self.frame_shape = image.shape[:2]
        face = None
        if service.face_detector is not None:
            faces = select_faces(service.face_detector.detect(image), config.face_min_size, "all")
            height, width = image.shape[:2]
            chosen = self.track.follow([candidate.box(width, height) for candidate in faces])
            face = faces[chosen] if chosen is not None else None
        if face is None:
            region = whole_image_region(image, size, fit)
            pixels = fit_for_model(region.pixels, size, fit)
            self.pending.append((index, timestamp_s, region.box, None, None, pixels))
            return
        crop = crop_face(image, face, size, mode=config.face_crop, margin=config.face_margin, fit=fit)
        height, width = image.shape[:2]
        self.pending.append((index, timestamp_s, crop.box, face.box(width, height), face.score, crop.pixels))

    def flush(self, full_only: bool) -> bool:
        """Score the pending frames (only a full batch with full_only); whether any were scored."""
        if not self.pending or (full_only and len(self.pending) < BATCH_FRAMES):
            return False
        batch = np.stack([entry[-1] for entry in self.pending])
        probabilities = np.asarray(self.service.predictor.predict(batch), dtype=np.float64).reshape(-1)
        rule = self.service.rule
        for (index, timestamp_s, region, face, face_score, _), p in zip(self.pending, probabilities, strict=True):
            self.done.append(FrameScore(index, timestamp_s, float(p), rule.label(float(p)), region, face,
                                        None if face_score is None else round(float(face_score), 4)))
        self.pending.clear()
        return True


def _keep_worst(thumbnails: dict[int, bytes], scored: list[FrameScore]) -> None:
    """Drop the thumbnails of scored frames that can no longer be among the WORST_FRAMES most fake: a clip's
    thumbnails then cost a few, not one per sampled frame."""
    worst = set(sorted(range(len(scored)), key=lambda i: scored[i].fake_probability, reverse=True)[:WORST_FRAMES])
    for position in [position for position in thumbnails if position < len(scored) and position not in worst]:
        del thumbnails[position]


def _thumbnail(pixels: np.ndarray) -> bytes:
    image = Image.fromarray(pixels)
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=THUMBNAIL_QUALITY)
    return buffer.getvalue()


def _data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
