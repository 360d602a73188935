"""The demo clips: deterministic, moving, in every container, with the fake trace on every frame of a fake, and
faces the project's detector finds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepfake_detector.components.data.demo_video import generate_demo_videos, render_demo_video
from deepfake_detector.config.entities import DemoDataConfig
from deepfake_detector.contracts.labels import FAKE, REAL
from deepfake_detector.video.decoding import VIDEO_CONTAINERS, FrameSampling, open_video, sniff_video
from tests.unit.test_demo_data import gray_peak_ratio

CONFIG = DemoDataConfig(seed=42, images_per_class=2, image_size=96)
TINY = {"seconds": 1.0, "fps": 8, "size": 96}
EVERY_FRAME = FrameSampling(count=None, max_fps=1000.0)
CODECS = {"mp4": "h264", "mov": "h264", "webm": "vp9", "avi": "mpeg4"}


def decoded(clip: bytes, sampling: FrameSampling = EVERY_FRAME) -> list[np.ndarray]:
    with open_video(clip) as opened:
        return [frame.pixels for frame in opened.frames(sampling)]


def nyquist_peak_ratio(pixels: np.ndarray) -> float:
    """Luma power at half the sampling rate along each axis over the median power around it: the peak a
    stride-2 up-sampling checkerboard leaves, absent from a camera's noise."""
    return gray_peak_ratio(pixels.astype(np.float64) @ np.array([0.299, 0.587, 0.114]), divisor=2)


def test_same_arguments_give_the_same_bytes() -> None:
    assert render_demo_video(CONFIG, FAKE, 1, **TINY) == render_demo_video(CONFIG, FAKE, 1, **TINY)


def test_fake_real_and_other_indexes_give_other_clips() -> None:
    clips = {render_demo_video(CONFIG, label, index, **TINY) for label in (FAKE, REAL) for index in (1, 2)}
    assert len(clips) == 4


def test_the_camera_moves_over_the_clip() -> None:
    frames = decoded(render_demo_video(CONFIG, REAL, 1, **TINY))
    assert len(frames) == 8
    first, last = (frame.astype(np.int16) for frame in (frames[0], frames[-1]))
    assert np.abs(first - last).mean() > 4.0  # a pan and a turn move edges by pixels, not noise by a level


@pytest.mark.parametrize("container", VIDEO_CONTAINERS)
def test_every_container_gives_a_clip_of_the_asked_length_and_size(container: str) -> None:
    clip = render_demo_video(CONFIG, FAKE, 1, container=container, **TINY)
    assert sniff_video(clip[:16]) == container
    with open_video(clip) as opened:
        assert (opened.info.codec, opened.info.width, opened.info.height) == (CODECS[container], 96, 96)
        assert opened.info.fps == pytest.approx(8.0)
        assert len(list(opened.frames(EVERY_FRAME))) == 8


def test_the_fake_trace_is_on_every_frame_of_a_fake() -> None:
    """After H.264 at the default bitrate, each fake frame keeps the checkerboard's spectral peak and no real
    frame has one; with fingerprint_strength 0 the fakes' peak is gone."""
    fakes = [nyquist_peak_ratio(frame) for index in (1, 2) for frame in
             decoded(render_demo_video(CONFIG, FAKE, index, **TINY))]
    reals = [nyquist_peak_ratio(frame) for index in (1, 2) for frame in
             decoded(render_demo_video(CONFIG, REAL, index, **TINY))]
    assert len(fakes) == len(reals) == 16
    assert min(fakes) > 100, fakes
    assert max(reals) < 30, reals


def test_generate_demo_videos_writes_class_folders(tmp_path: Path) -> None:
    counts = generate_demo_videos(CONFIG, tmp_path, 2, **TINY)
    assert counts == {"fake": 2, "real": 2}
    written = sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*") if path.is_file())
    assert written == ["fake/fake_1.mp4", "fake/fake_2.mp4", "real/real_1.mp4", "real/real_2.mp4"]
    assert (tmp_path / "real" / "real_2.mp4").read_bytes() == render_demo_video(CONFIG, REAL, 2, **TINY)


@pytest.mark.parametrize("arguments", [{"size": 95}, {"container": "mkv"}, {"fps": 0}, {"seconds": 0.0}],
                         ids=["odd-size", "unknown-container", "no-fps", "no-length"])
def test_impossible_clips_are_refused(arguments: dict) -> None:
    with pytest.raises(ValueError):
        render_demo_video(CONFIG, FAKE, 1, **{**TINY, **arguments})


def test_the_face_detector_finds_a_face_on_most_frames() -> None:
    face_detection = pytest.importorskip("deepfake_detector.inference.face_detection")
    try:
        face_detection.weights_file("short_range")
    except Exception as error:  # the weights package is an optional install
        pytest.skip(f"BlazeFace weights are not installed: {error}")
    detector = face_detection.FaceDetector("short_range")
    frames = [frame for label in (FAKE, REAL) for index in (1, 2, 3)
              for frame in decoded(render_demo_video(CONFIG, label, index, seconds=1.0, fps=8, size=160),
                                   FrameSampling(count=4))]
    found = sum(bool(detector.detect(frame)) for frame in frames)
    assert len(frames) == 24
    assert found >= 0.9 * len(frames), f"faces found on {found} of {len(frames)} frames"
