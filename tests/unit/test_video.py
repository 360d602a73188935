"""Video uploads: the container told by content, the sampled frames (which, when, what shape), every cap, and bad
files refused with a VideoError, never another exception."""
from __future__ import annotations

import io
import struct
import tracemalloc
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from deepfake_detector.contracts.errors import ImageError, ImageTooLargeError, VideoError, VideoTooLargeError
from deepfake_detector.video import decoding as video
from deepfake_detector.video.decoding import (
    VIDEO_CONTAINERS,
    FrameSampling,
    VideoLimits,
    open_video,
    sniff_video,
)

CODECS = {"mp4": ("mp4", "libx264"), "mov": ("mov", "libx264"), "webm": ("webm", "libvpx-vp9"),
          "avi": ("avi", "mpeg4")}
DECODED_CODECS = {"mp4": "h264", "mov": "h264", "webm": "vp9", "avi": "mpeg4"}
FAST = {"libx264": {"preset": "ultrafast"}, "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8"}, "mpeg4": {}}
EVERY_FRAME = FrameSampling(count=None, max_fps=1000.0)


class _Unseekable:
    """A write-only sink: muxers writing to it cannot go back to fill in the duration."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)


def gray_level(number: int) -> int:
    return 10 + 10 * (number % 24)


def encode_clip(container: str = "mp4", *, frames: int = 20, fps: int = 10, width: int = 96, height: int = 64,
                gop: int | None = None, rotation: int | None = None, seekable: bool = True) -> bytes:
    """A clip whose frame n is flat gray_level(n) with a white top-left square, so a sample tells its frame."""
    muxer, codec = CODECS[container]
    sink = io.BytesIO() if seekable else _Unseekable()
    with av.open(sink, mode="w", format=muxer) as output:
        options = {**FAST[codec], **({"g": str(gop)} if gop else {})}
        stream = output.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt, stream.bit_rate = width, height, "yuv420p", 800_000
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for number in range(frames):
            pixels = np.full((height, width, 3), gray_level(number), dtype=np.uint8)
            pixels[:16, :16] = 255
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = number, Fraction(1, fps)
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return sink.getvalue() if seekable else b"".join(sink.chunks)


def frame_number(pixels: np.ndarray) -> int:
    """Which frame of encode_clip these pixels are (frames under 24)."""
    return round((float(np.median(pixels)) - 10) / 10)


def read_all(source, sampling: FrameSampling = FrameSampling(), **kwargs) -> list[video.VideoFrame]:
    with open_video(source, **kwargs) as opened:
        return list(opened.frames(sampling))


@pytest.fixture(scope="module")
def clip() -> bytes:
    """2 s at 10 fps, 96 x 64, H.264 in MP4."""
    return encode_clip()


@pytest.fixture(scope="module")
def clips() -> dict[str, bytes]:
    return {container: encode_clip(container, frames=10) for container in VIDEO_CONTAINERS}


@pytest.mark.parametrize("container", VIDEO_CONTAINERS)
def test_each_container_is_sniffed_from_its_first_bytes(clips: dict[str, bytes], container: str) -> None:
    assert sniff_video(clips[container][:16]) == container


def picture(format_name: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buffer, format_name)
    return buffer.getvalue()


@pytest.mark.parametrize("head", [picture("JPEG"), picture("PNG"), np.random.default_rng(0).bytes(64), b"",
                                  b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00"],
                         ids=["jpeg", "png", "random", "empty", "heic-photo"])
def test_pictures_and_noise_are_not_videos(head: bytes) -> None:
    assert sniff_video(head[:16]) is None


def test_a_video_named_jpg_opens_as_a_video(clip: bytes, tmp_path: Path) -> None:
    path = tmp_path / "holiday.jpg"
    path.write_bytes(clip)
    with open_video(path) as opened:
        assert opened.info.container == "mp4"
        assert len(list(opened.frames(FrameSampling(count=3)))) == 3


@pytest.mark.parametrize("container", VIDEO_CONTAINERS)
def test_every_container_decodes_to_rgb_frames(clips: dict[str, bytes], container: str) -> None:
    with open_video(clips[container]) as opened:
        frames = list(opened.frames(FrameSampling(count=4)))
        assert (opened.info.codec, opened.info.width, opened.info.height) == (DECODED_CODECS[container], 96, 64)
    assert len(frames) == 4
    for frame in frames:
        assert frame.pixels.shape == (64, 96, 3) and frame.pixels.dtype == np.uint8
        assert frame.pixels.flags.c_contiguous
        assert frame.pixels[:16, :16].min() > 200  # the white square stays top-left: RGB the right way up


def test_count_sampling_takes_frames_evenly_spread_over_the_clip(clip: bytes) -> None:
    frames = read_all(clip, FrameSampling(count=5))
    assert [frame.index for frame in frames] == [2, 6, 10, 14, 18]  # the middles of five 0.4 s spans
    assert [frame_number(frame.pixels) for frame in frames] == [2, 6, 10, 14, 18]
    assert [frame.timestamp_s for frame in frames] == pytest.approx([0.2, 0.6, 1.0, 1.4, 1.8])


def test_fps_cap_takes_at_most_that_many_frames_a_second(clip: bytes) -> None:
    frames = read_all(clip, FrameSampling(count=None, max_fps=2.0))
    assert [frame_number(frame.pixels) for frame in frames] == [0, 5, 10, 15]
    assert [frame.timestamp_s for frame in frames] == pytest.approx([0.0, 0.5, 1.0, 1.5])


def test_a_count_above_the_frame_count_returns_each_frame_once() -> None:
    frames = read_all(encode_clip(frames=8), FrameSampling(count=50))
    assert [frame_number(frame.pixels) for frame in frames] == list(range(8))
    timestamps = [frame.timestamp_s for frame in frames]
    assert timestamps == sorted(set(timestamps))


def test_without_a_declared_duration_count_takes_a_frame_a_second_to_the_end() -> None:
    streamed = encode_clip("webm", frames=40, seekable=False)  # 4 s; a streamed WebM carries no duration
    with open_video(streamed) as opened:
        assert opened.info.duration_s is None
        frames = list(opened.frames(FrameSampling(count=3)))
    # the whole clip is covered, not its first three seconds: a frame a second, and the last one
    assert [frame.timestamp_s for frame in frames] == pytest.approx([0.0, 1.0, 2.0, 3.0, 3.9])


class PastDeadline(Exception):
    pass


def test_a_check_runs_while_frames_between_samples_are_decoded() -> None:
    calls = []

    def deadline() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise PastDeadline("past the deadline")

    with open_video(encode_clip(frames=40)) as opened, pytest.raises(PastDeadline):
        list(opened.frames(FrameSampling(count=1), check=deadline))  # one sample, in the middle: frame 20
    assert len(calls) == 2  # stopped after 16 decoded frames, before the sample


def test_an_older_quicktime_file_starting_with_a_moov_atom_is_a_video() -> None:
    assert sniff_video(b"\x00\x00\x10\x00moov\x00\x00\x00\x6cmvhd") == "mov"
    assert sniff_video(b"\x00\x00\x00\x08wide\x00\x10\x00\x00mdat") == "mov"


@pytest.mark.parametrize("count, max_fps", [(None, None), (4, 2.0), (0, None), (None, 0.0), (None, -1.0)])
def test_sampling_needs_exactly_one_positive_rule(count, max_fps) -> None:
    with pytest.raises(ValueError):
        FrameSampling(count=count, max_fps=max_fps)


def test_a_too_large_video_is_refused_as_an_upload_too_large() -> None:
    assert issubclass(VideoTooLargeError, ImageTooLargeError) and issubclass(VideoTooLargeError, VideoError)
    assert issubclass(VideoError, ImageError)


@pytest.mark.parametrize("limits, cap", [
    (VideoLimits(max_bytes=1000), "byte cap"),
    (VideoLimits(max_duration_s=1.5), "duration cap"),
    (VideoLimits(max_frame_pixels=96 * 63), "frame size cap"),
    (VideoLimits(max_frames_decoded=5), "frames decoded cap"),
], ids=["bytes", "duration", "frame-size", "frames-decoded"])
def test_each_cap_refuses_a_video_beyond_it(clip: bytes, limits: VideoLimits, cap: str) -> None:
    with pytest.raises(VideoTooLargeError, match=cap):
        read_all(clip, FrameSampling(count=16), limits=limits)


def test_frames_past_the_duration_cap_are_refused_when_the_header_does_not_say() -> None:
    streamed = encode_clip("webm", frames=40, seekable=False)
    with pytest.raises(VideoTooLargeError, match=r"frame at 3\.1 s, past the duration cap of 3 s"):
        read_all(streamed, EVERY_FRAME, limits=VideoLimits(max_duration_s=3.0))


def test_not_a_video_is_refused_naming_the_upload() -> None:
    with pytest.raises(VideoError, match=r"^holiday\.mp4: not a video \(mp4, mov, webm or avi\)$"):
        read_all(picture("PNG"), name="holiday.mp4")


def test_a_missing_file_is_a_video_error(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="file not found"):
        read_all(tmp_path / "gone.mp4")


def refused(data: bytes, sampling: FrameSampling = FrameSampling()) -> VideoError:
    """The VideoError reading data raises (pytest.raises would also let subclasses, e.g. too large, pass)."""
    with pytest.raises(VideoError) as caught:
        read_all(data, sampling)
    assert type(caught.value) is VideoError
    return caught.value


@pytest.mark.parametrize("container, reason", [("mp4", "not a readable mp4 file"), ("webm", "truncated")])
@pytest.mark.parametrize("sampling", [FrameSampling(count=4), EVERY_FRAME], ids=["count", "every-frame"])
def test_a_file_cut_at_half_is_refused(container: str, reason: str, sampling: FrameSampling) -> None:
    """MP4's index comes last, so half a file has none; a WebM's header survives, its frames stop early."""
    whole = encode_clip(container, frames=30)
    assert reason in str(refused(whole[: len(whole) // 2], sampling))


def test_garbage_after_a_valid_ftyp_is_refused(clip: bytes) -> None:
    refused(clip[:32] + np.random.default_rng(1).bytes(4000))


def test_an_mp4_with_only_sound_is_refused() -> None:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as output:
        stream = output.add_stream("aac", rate=16000)
        for number in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, number * 1024
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    assert "has no video stream" in str(refused(buffer.getvalue()))


def test_a_video_without_frames_is_refused() -> None:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="avi") as output:
        stream = output.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        output.start_encoding()
    assert "has no decodable frames" in str(refused(buffer.getvalue()))


@pytest.mark.parametrize("container", VIDEO_CONTAINERS)
def test_damaged_files_give_frames_or_a_video_error_and_nothing_else(clips: dict[str, bytes], container: str) -> None:
    rng = np.random.default_rng(7)
    original = clips[container]
    for trial in range(12):
        data = bytearray(original)
        if trial % 2:
            start = int(rng.integers(16, len(data)))
            data[start:start + 200] = rng.bytes(200)
        else:
            for position in rng.integers(16, len(data), size=8):
                data[position] = int(rng.integers(0, 256))
        try:
            read_all(bytes(data), EVERY_FRAME if trial % 3 else FrameSampling(count=4))
        except VideoError:
            pass


@pytest.mark.parametrize("rotation, white_corner", [(90, "bottom-left"), (-90, "top-right"), (180, "bottom-right")])
def test_a_rotated_video_comes_out_upright(rotation: int, white_corner: str) -> None:
    """A phone's portrait clip is stored turned with a display rotation (counter-clockwise degrees)."""
    frame = read_all(encode_clip(frames=3, rotation=rotation), FrameSampling(count=1))[0]
    assert frame.pixels.shape == ((96, 64, 3) if rotation % 180 else (64, 96, 3))
    red = frame.pixels[..., 0].astype(float)
    corners = {"top-left": red[:8, :8], "top-right": red[:8, -8:], "bottom-left": red[-8:, :8],
               "bottom-right": red[-8:, -8:]}
    assert max(corners, key=lambda name: corners[name].mean()) == white_corner


def with_display_matrix(clip: bytes, matrix: tuple[int, ...]) -> bytes:
    """The mp4 clip with its track header's display matrix replaced (nine big-endian int32)."""
    data = bytearray(clip)
    at = data.find(b"tkhd") + 4 + 4 + 20 + 8 + 8  # version and flags, times, ids, reserved, layer and volume
    data[at:at + 36] = struct.pack(">9i", *matrix)
    return bytes(data)


@pytest.mark.parametrize("matrix, white_corner", [
    ((-65536, 0, 0, 0, 65536, 0, 0, 0, 0x40000000), "top-right"),      # mirrored left to right
    ((65536, 0, 0, 0, -65536, 0, 0, 0, 0x40000000), "bottom-left"),    # mirrored top to bottom
    ((0, 65536, 0, 65536, 0, 0, 0, 0, 0x40000000), "top-left"),        # transposed: turned and mirrored
], ids=["hflip", "vflip", "transpose"])
def test_a_mirrored_video_is_shown_as_players_show_it(matrix: tuple[int, ...], white_corner: str) -> None:
    frame = read_all(with_display_matrix(encode_clip(frames=3), matrix), FrameSampling(count=1))[0]
    red = frame.pixels[..., 0].astype(float)
    corners = {"top-left": red[:8, :8], "top-right": red[:8, -8:], "bottom-left": red[-8:, :8],
               "bottom-right": red[-8:, -8:]}
    assert max(corners, key=lambda name: corners[name].mean()) == white_corner
    assert frame.pixels.shape == ((96, 64, 3) if matrix[0] == 0 else (64, 96, 3))


def test_seeking_sampler_returns_the_frames_a_full_decode_does(monkeypatch: pytest.MonkeyPatch) -> None:
    frequent_keyframes = encode_clip(frames=60, gop=5)  # 6 s, a keyframe every 0.5 s
    seeks = []
    decoded = video.OpenedVideo._decoded

    def spy(self, seek_to):
        seeks.append(seek_to)
        return decoded(self, seek_to)

    monkeypatch.setattr(video.OpenedVideo, "_decoded", spy)
    sampled = read_all(frequent_keyframes, FrameSampling(count=4))
    assert [seek for seek in seeks if seek is not None], "the sampler should have sought ahead"
    monkeypatch.setattr(video, "_SEEK_MIN_GAP_S", float("inf"))
    decoded_in_full = read_all(frequent_keyframes, FrameSampling(count=4))
    assert [(frame.index, frame.timestamp_s) for frame in sampled] == \
        [(frame.index, frame.timestamp_s) for frame in decoded_in_full]
    assert all(np.array_equal(a.pixels, b.pixels) for a, b in zip(sampled, decoded_in_full, strict=True))


def test_frames_can_be_read_twice(clip: bytes) -> None:
    with open_video(clip) as opened:
        first = [frame.timestamp_s for frame in opened.frames(FrameSampling(count=3))]
        second = [frame.timestamp_s for frame in opened.frames(FrameSampling(count=3))]
    assert first == second and len(first) == 3


def test_memory_stays_flat_on_a_long_clip() -> None:
    """Every frame of a 20 s clip converted, one at a time: numpy's allocations peak at a few frames' worth."""
    long_clip = encode_clip(frames=200, width=64, height=64)
    frame_bytes = 64 * 64 * 3
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        count = 0
        with open_video(long_clip) as opened:
            for frame in opened.frames(EVERY_FRAME):
                count += frame.pixels.shape[0] > 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 200
    assert peak < 20 * frame_bytes, f"peak {peak:,} bytes for {count} frames of {frame_bytes:,} bytes"
