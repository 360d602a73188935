"""The demo dataset as video clips: demo_data's procedural head-and-shoulders scenes, moving and turning a little,
with a fake's generator trace or a real camera's noise on every frame, encoded with a real codec, so the video
path runs offline in tests and CI.
"""
from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from tqdm import tqdm

from deepfake_detector.components.data.demo_data import (
    FAKE_MAKERS,
    DemoStyle,
    FakeInputs,
    Head,
    add_sensor_noise,
    demo_style,
    draw_scene_and_head,
)
from deepfake_detector.config.entities import DemoDataConfig
from deepfake_detector.contracts.labels import CLASS_NAMES, FAKE, REAL
from deepfake_detector.utils.files import atomic_path
from deepfake_detector.video.decoding import VIDEO_CONTAINERS

logger = logging.getLogger(__name__)

# FFmpeg's muxer and a codec each container is commonly written with.
ENCODERS = {"mp4": ("mp4", "libx264"), "mov": ("mov", "libx264"), "webm": ("webm", "libvpx-vp9"),
            "avi": ("avi", "mpeg4")}
# Fixed encoder settings, so that a clip's bytes are a function of its frames: one thread (the output would
# depend on the core count), and for x264 no macroblock-tree rate control, whose SIMD code was measured to make
# the bytes vary from run to run within one process. VP9 runs at its fast real-time setting (its default,
# "good", takes seconds a frame).
_CODEC_OPTIONS = {"libx264": {"threads": "1", "x264-params": "mbtree=0"},
                  "libvpx-vp9": {"threads": "1", "deadline": "realtime", "cpu-used": "8"},
                  "mpeg4": {"threads": "1"}}
# Appended to each clip's seed, so that no clip repeats the scene of the demo still with the same index.
_VIDEO_STREAM = ord("v")
# The scene is drawn this much larger than a frame, so that the moving, turning crop never leaves it: the
# largest turn (4 degrees) needs 1.07 x, the pan 0.1 x more.
_SCENE_MARGIN = 1.2
_MAX_PAN = 0.05   # of the frame side, each way from the clip's middle position
_MAX_TURN_DEGREES = 4.0
_MAX_ZOOM = 0.06


@dataclass(frozen=True)
class _Motion:
    """The camera's path over a clip, from u = 0 (first frame) to 1 (last): a pan along a direction, an
    in-plane turn and a push-in, each eased in and out."""

    pan: tuple[float, float]  # (x, y) in pixels, from -pan at the start to +pan at the end
    turn_degrees: float       # from -turn to +turn, counter-clockwise on screen
    zoom: float               # from 1 to 1 + zoom

    def at(self, u: float) -> tuple[float, float, float, float]:
        """(pan x, pan y, turn in degrees, zoom) at clip position u in [0, 1]."""
        eased = 0.5 - 0.5 * math.cos(math.pi * u)
        swing = 2 * eased - 1
        return self.pan[0] * swing, self.pan[1] * swing, self.turn_degrees * swing, 1 + self.zoom * eased


def render_demo_video(config: DemoDataConfig, label: int, index: int, *, seconds: float = 2.0, fps: int = 12,
                      size: int | None = None, container: str = "mp4", bitrate: int = 1_500_000) -> bytes:
    """One demo clip as the bytes of a `container` file (mp4/mov: H.264, webm: VP9, avi: MPEG-4 part 2, all
    4:2:0 at `bitrate` bits a second); a pure function of its arguments.

    The scene of demo_data (config.style's) is drawn once, larger than a frame, from a generator seeded by
    (seed, class, index, style, "v"); each frame is a crop of it that pans 4-10 % of the frame across the
    clip, turns by 2-8 degrees and pushes in by up to 6 %. The class's trace is made per frame after that
    motion, as render_demo_image makes it on a still, so it sits on the pixel grid of every frame: a fake gets
    its style's FAKE_MAKERS trace (and camera noise for the style's noisy share of fakes), a real gets camera
    noise; each frame draws its own noise. `size` (config.image_size when None) must be even, as 4:2:0
    chroma needs.
    """
    style = demo_style(config.style)
    size = config.image_size if size is None else size
    _check_clip(label, seconds, fps, size, container, bitrate)
    stream = (config.seed, label, index, *style.stream, _VIDEO_STREAM)
    rng = np.random.default_rng(stream)
    scene, head = draw_scene_and_head(rng, math.ceil(_SCENE_MARGIN * size), style)
    motion = _draw_motion(rng, size)
    is_noisy_fake = label == FAKE and style.noisy_fake_share > 0 and rng.random() < style.noisy_fake_share
    frame_count = max(1, round(seconds * fps))

    def frames() -> Iterator[np.ndarray]:
        for number in range(frame_count):
            frame_rng = np.random.default_rng((*stream, number + 1))
            u = number / (frame_count - 1) if frame_count > 1 else 0.0
            pixels, frame_head = _camera_view(scene, head, motion.at(u), size)
            yield _to_uint8(_traced(pixels, frame_head, label, is_noisy_fake, frame_rng, config, style))

    return _encode(frames(), size, fps, container, bitrate)


def generate_demo_videos(config: DemoDataConfig, target_dir: Path, videos_per_class: int,
                         **video_kwargs) -> dict[str, int]:
    """Write videos_per_class fake and real clips (render_demo_video with video_kwargs) into target_dir's
    class folders, fake/fake_<i>.<container> and real/real_<i>.<container>, each file atomically.

    Byte-identical for the same arguments; returns the number of clips written per class name."""
    if videos_per_class < 1:
        raise ValueError(f"videos_per_class must be at least 1, got {videos_per_class}")
    container = video_kwargs.get("container", "mp4")
    target_dir = Path(target_dir)
    jobs = [(label, index) for label in (FAKE, REAL) for index in range(1, videos_per_class + 1)]
    for label, index in tqdm(jobs, desc="demo videos", unit="clip", leave=False):
        clip = render_demo_video(config, label, index, **video_kwargs)
        with atomic_path(target_dir / CLASS_NAMES[label] / f"{CLASS_NAMES[label]}_{index}.{container}") as tmp:
            tmp.write_bytes(clip)
    counts = {CLASS_NAMES[label]: videos_per_class for label in (FAKE, REAL)}
    logger.info("Demo videos (style %s): %d fake and %d real %s clips in %s", config.style, counts["fake"],
                counts["real"], container, target_dir)
    return counts


def _check_clip(label: int, seconds: float, fps: int, size: int, container: str, bitrate: int) -> None:
    if label not in (FAKE, REAL):
        raise ValueError(f"label must be {FAKE} (fake) or {REAL} (real), got {label!r}")
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds!r}")
    if isinstance(fps, bool) or not isinstance(fps, int) or fps < 1:
        raise ValueError(f"fps must be a positive integer, got {fps!r}")
    if size < 16 or size % 2:
        raise ValueError(f"the frame side must be even and at least 16 pixels (4:2:0 chroma), got {size}")
    if container not in VIDEO_CONTAINERS:
        raise ValueError(f"container must be one of {', '.join(VIDEO_CONTAINERS)}, got {container!r}")
    if bitrate < 10_000:
        raise ValueError(f"bitrate is in bits a second and must be at least 10000, got {bitrate}")


def _draw_motion(rng: np.random.Generator, size: int) -> _Motion:
    direction = rng.uniform(0, 2 * math.pi)
    pan = rng.uniform(0.02, _MAX_PAN) * size
    turn = rng.uniform(1.0, _MAX_TURN_DEGREES) * rng.choice([-1.0, 1.0])
    return _Motion(pan=(pan * math.cos(direction), pan * math.sin(direction)), turn_degrees=float(turn),
                   zoom=float(rng.uniform(0.0, _MAX_ZOOM)))


def _camera_view(scene: np.ndarray, head: Head, pose: tuple[float, float, float, float],
                 size: int) -> tuple[np.ndarray, Head]:
    """The size x size frame the camera sees in pose (pan x, pan y, turn, zoom), and where the head is in it.

    Frame pixel p shows scene point C + pan + R(-turn)(p - c) / zoom (c and C the frame's and scene's
    centres), so the content turns counter-clockwise on screen by `turn`, as Pillow's rotate does."""
    pan_x, pan_y, turn, zoom = pose
    angle = math.radians(turn)
    cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
    frame_centre, scene_centre = (size - 1) / 2, (scene.shape[0] - 1) / 2
    source_x, source_y = scene_centre + pan_x, scene_centre + pan_y
    to_scene = np.array([[cos, -sin, source_x - cos * frame_centre + sin * frame_centre],
                         [sin, cos, source_y - sin * frame_centre - cos * frame_centre]], dtype=np.float64)
    pixels = cv2.warpAffine(scene, to_scene, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REFLECT)
    dx, dy = head.cx - source_x, head.cy - source_y
    frame_head = Head(cx=frame_centre + zoom * (dx * math.cos(angle) + dy * math.sin(angle)),
                      cy=frame_centre + zoom * (-dx * math.sin(angle) + dy * math.cos(angle)),
                      half_w=head.half_w * zoom, half_h=head.half_h * zoom, tilt=head.tilt + turn)
    return pixels, frame_head


def _traced(pixels: np.ndarray, head: Head, label: int, is_noisy_fake: bool, rng: np.random.Generator,
            config: DemoDataConfig, style: DemoStyle) -> np.ndarray:
    """One frame with its class's trace, made as render_demo_image makes a still's."""
    noise_level = config.sensor_noise * style.noise_scale
    if label == FAKE:
        pixels = FAKE_MAKERS[style.fakes](FakeInputs(pixels, head, rng, config, style))
        if is_noisy_fake:
            pixels = add_sensor_noise(pixels, rng, noise_level, style.demosaic_blur)
        return pixels
    return add_sensor_noise(pixels, rng, noise_level, style.demosaic_blur)


def _encode(frames: Iterator[np.ndarray], size: int, fps: int, container: str, bitrate: int) -> bytes:
    """The frames (uint8 RGB) encoded one by one into a `container` file's bytes."""
    muxer, codec = ENCODERS[container]
    buffer = io.BytesIO()
    # bitexact: no random segment id (WebM) and no library versions written, so the same frames give the same bytes
    with av.open(buffer, mode="w", format=muxer, container_options={"fflags": "+bitexact"}) as output:
        stream = output.add_stream(codec, rate=fps, options={**_CODEC_OPTIONS[codec], "flags": "+bitexact"})
        stream.width, stream.height, stream.pix_fmt, stream.bit_rate = size, size, "yuv420p", bitrate
        time_base = Fraction(1, fps)
        for number, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = number, time_base
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return buffer.getvalue()


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)
