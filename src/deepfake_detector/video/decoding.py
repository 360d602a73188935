"""Video uploads, decoded as a stream through PyAV (FFmpeg's libraries, in-process: no TensorFlow, no shell-out).

The container is told by its bytes, never by its name; every cap (bytes, duration, frame size, frames decoded)
is checked from the header before decoding and again while decoding, since a header may lie; and only the
sampled frames become RGB arrays, so memory stays flat whatever the clip's length.
"""
from __future__ import annotations

import bisect
import contextlib
import io
import itertools
import logging
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from deepfake_detector.contracts.errors import VideoError, VideoTooLargeError

logger = logging.getLogger(__name__)

VIDEO_CONTAINERS = ("mp4", "mov", "webm", "avi")
UPLOAD_NAME = "uploaded video"
SNIFF_BYTES = 16
DECODER_THREADS = 2
NOT_A_VIDEO = "not a video (mp4, mov, webm or avi)"
CHECK_EVERY_FRAMES = 8  # frames decoded between two calls of frames()'s check

# The FFmpeg demuxer for each sniffed container. Forcing it keeps FFmpeg's other demuxers (playlists, concat
# lists, image sequences, raw streams) away from uploads, whatever the bytes claim to be.
_DEMUXERS = {"mp4": "mov", "mov": "mov", "webm": "matroska", "avi": "avi"}
# ISO-BMFF major brands of still pictures (HEIF and AVIF photos): they start with an ftyp box too.
_STILL_IMAGE_BRANDS = frozenset({b"heic", b"heix", b"mif1", b"avif"})
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
# Older QuickTime files start with one of these atoms instead of ftyp.
_QUICKTIME_FIRST_ATOMS = frozenset({b"moov", b"mdat", b"free", b"wide", b"skip"})
# What PyAV raises for input it cannot read: FFmpeg's errors (InvalidDataError, EOFError, ...) and the
# ValueError, OverflowError and the like its Python layer raises for nonsense in a header.
_UNREADABLE = (av.error.FFmpegError, ValueError, OverflowError, IndexError, EOFError, OSError)
# A sampler seeks to a keyframe only when that skips at least this much of the clip: the first frame after a
# seek costs the decoder's flush, the refill of its frame threads and a full intra frame (measured on 720p H.264:
# about as much as a dozen frames decoded in a row), so shorter jumps are cheaper decoded forward.
_SEEK_MIN_GAP_S = 1.0
# Frames that end before this share of the declared duration, and at least _MIN_MISSING_S short of it, mean
# a truncated file.
_MIN_COMPLETE_SHARE = 0.75
_MIN_MISSING_S = 0.5
# The frame period assumed for a frame without a timestamp in a clip that declares no frame rate.
_FALLBACK_FRAME_PERIOD_S = 1 / 25


def sniff_video(head: bytes) -> str | None:
    """The container the first SNIFF_BYTES bytes announce ("mp4", "mov", "webm" or "avi"), or None.

    ISO-BMFF (an ftyp box at offset 4) is "mov" for QuickTime's brand "qt  " and "mp4" for any other video
    brand; HEIF and AVIF photos share the box and are not videos. A file starting with a moov, mdat, free,
    wide or skip atom is an older QuickTime file ("mov"). Matroska and WebM share EBML's magic and
    are both reported as "webm" (one demuxer reads both). AVI is RIFF with the form type "AVI ".
    """
    head = bytes(head[:SNIFF_BYTES])
    if head[4:8] == b"ftyp" and len(head) >= 12:
        brand = head[8:12]
        if brand in _STILL_IMAGE_BRANDS:
            return None
        return "mov" if brand == b"qt  " else "mp4"
    if head[4:8] in _QUICKTIME_FIRST_ATOMS:
        return "mov"
    if head.startswith(_EBML_MAGIC):
        return "webm"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    return None


@dataclass(frozen=True)
class VideoLimits:
    """What one upload may cost: its bytes, its duration, one frame's pixels and the frames decoded in one pass."""

    max_bytes: int = 64 * 2**20
    max_duration_s: float = 120.0
    max_frame_pixels: int = 1920 * 1080
    max_frames_decoded: int = 4000


@dataclass(frozen=True)
class FrameSampling:
    """Which frames to take: `count` frames evenly spread over the clip, or at most `max_fps` frames a second.

    Exactly one of the two is set; FrameSampling(count=None, max_fps=2.0) asks for the rate.
    """

    count: int | None = 16
    max_fps: float | None = None

    def __post_init__(self) -> None:
        if (self.count is None) == (self.max_fps is None):
            raise ValueError(f"set exactly one of count and max_fps, got count={self.count!r}, "
                             f"max_fps={self.max_fps!r}")
        if self.count is not None and (isinstance(self.count, bool) or not isinstance(self.count, int)
                                       or self.count < 1):
            raise ValueError(f"count must be a positive integer, got {self.count!r}")
        if self.max_fps is not None and not (isinstance(self.max_fps, (int, float)) and math.isfinite(self.max_fps)
                                             and self.max_fps > 0):
            raise ValueError(f"max_fps must be a positive number, got {self.max_fps!r}")


@dataclass(frozen=True)
class VideoInfo:
    """What the header declares. width and height are as stored, before any rotation the file asks for;
    duration_s and fps are None when the file does not say."""

    container: str
    codec: str
    width: int
    height: int
    duration_s: float | None
    fps: float | None


@dataclass(frozen=True)
class VideoFrame:
    """One sampled frame: uint8 (H, W, 3) RGB, C-contiguous, turned upright when the file says so.

    Upright means as a player shows it: turned and mirrored as the display matrix says (upright()).
    index is the frame's number in the clip from 0: counted when every frame before it was decoded,
    round(timestamp_s x fps) after a seek. timestamp_s is seconds from the start of the video stream."""

    index: int
    timestamp_s: float
    pixels: np.ndarray


@contextlib.contextmanager
def open_video(source: bytes | str | os.PathLike, limits: VideoLimits = VideoLimits(), name: str | None = None,
               *, threads: int = DECODER_THREADS) -> Iterator[OpenedVideo]:
    """The video opened for decoding: its `info` and its `frames(sampling)`.

    Before a frame is decoded the byte size, the container (sniffed from the content), a video stream, the
    declared frame size and the declared duration are checked. Every failure is a VideoError naming the
    upload (`name`, else the file's name, or "uploaded video" for bytes); a cap exceeded is a
    VideoTooLargeError naming the cap. `threads` is the decoder's thread count (frame and slice threads).
    """
    name, file = _opened_file(source, limits.max_bytes, name)
    with file:
        kind = sniff_video(file.read(SNIFF_BYTES))
        if kind is None:
            raise VideoError(f"{name}: {NOT_A_VIDEO}")
        video = OpenedVideo(file, kind, limits, name, threads)
        try:
            yield video
        finally:
            video.close()


class OpenedVideo:
    """One open container and its first video stream; frames() decodes it, once per call."""

    def __init__(self, file: BinaryIO, container: str, limits: VideoLimits, name: str, threads: int) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self._file, self._limits, self._name, self._threads = file, limits, name, threads
        self._kind = container
        self._container: av.container.InputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._passes = 0
        self._check: Callable[[], None] | None = None
        self._decoded_count = 0  # frames decoded in the current pass, against max_frames_decoded
        self._open()
        self.info = self._read_info()
        self._check_declared()
        self._keyframes = self._keyframe_index()
        logger.debug("%s: %s, %s %dx%d, %s s at %s fps, %d keyframes indexed", name, container, self.info.codec,
                     self.info.width, self.info.height, self.info.duration_s, self.info.fps, len(self._keyframes))

    def frames(self, sampling: FrameSampling = FrameSampling(),
               check: Callable[[], None] | None = None) -> Iterator[VideoFrame]:
        """The sampled frames in display order, with strictly increasing timestamps; each call starts a new
        pass from the beginning (one pass at a time).

        count: the frame nearest to each of `count` times evenly spread over the declared duration (the
        middle of each of `count` equal spans); a frame is returned once, so a clip with fewer frames gives
        fewer. When the file declares no duration (a streamed or browser-recorded WebM), the frame nearest to
        each of 0, 1, 2, ... seconds to the clip's end: one a second, bounded by the caps, so that the samples
        still cover the whole clip. When a file ends before its declared
        duration, its last frame stands in for the times it does not reach.
        max_fps: the frame nearest to 0, 1 / max_fps, 2 / max_fps, ... seconds, up to the clip's end.

        Every frame up to the last sample is decoded, except where the file's index shows a keyframe far
        enough ahead to seek to (sparse samples of a clip with frequent keyframes); only the samples are
        converted to RGB. Raises VideoTooLargeError past max_frames_decoded frames, past max_duration_s or
        on a frame larger than max_frame_pixels, and VideoError on a corrupt stream or one with no frames.
        `check`, when given, is called every CHECK_EVERY_FRAMES decoded frames (a request's deadline: frames
        between two samples are decoded too) and may raise to stop.
        """
        if self._passes:
            self._open()  # a fresh demuxer and decoder: each pass starts at the beginning
        self._passes += 1
        self._check = check
        try:
            yield from self._sampled(sampling)
        except _UNREADABLE as error:
            raise VideoError(f"{self._name}: corrupt or truncated video: {_reason(error)}") from None

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def _open(self) -> None:
        self.close()
        self._file.seek(0)
        try:
            self._container = av.open(self._file, mode="r", format=_DEMUXERS[self._kind],
                                      metadata_errors="replace")
        except _UNREADABLE as error:
            raise VideoError(f"{self._name}: not a readable {self._kind} file: {_reason(error)}") from None
        if not self._container.streams.video:
            raise VideoError(f"{self._name}: has no video stream")
        self._stream = self._container.streams.video[0]
        if self._stream.codec_context is None:
            raise VideoError(f"{self._name}: its video stream is in a codec no decoder here reads")
        self._stream.thread_type = "AUTO"
        self._stream.codec_context.thread_count = self._threads
        # FFmpeg refuses a frame over the cap before allocating it: a stream may switch to a huge size mid-way.
        self._stream.codec_context.options = {"max_pixels": str(self._limits.max_frame_pixels)}

    def _read_info(self) -> VideoInfo:
        stream, container = self._stream, self._container
        duration = None
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate and math.isfinite(float(rate)) and float(rate) > 0 else None
        context = stream.codec_context
        return VideoInfo(container=self._kind, codec=context.name or "unknown",
                         width=context.width, height=context.height,
                         duration_s=duration if duration and duration > 0 else None, fps=fps)

    def _check_declared(self) -> None:
        info, limits = self.info, self._limits
        if info.width * info.height > limits.max_frame_pixels:
            raise VideoTooLargeError(f"{self._name}: {info.width}x{info.height} frames are too large (frame size "
                                     f"cap: at most {limits.max_frame_pixels:,} pixels a frame)")
        if info.duration_s is not None and info.duration_s > limits.max_duration_s:
            raise VideoTooLargeError(f"{self._name}: {info.duration_s:.1f} s is too long (duration cap: at most "
                                     f"{limits.max_duration_s:g} s)")

    @property
    def _origin(self) -> Fraction:
        """The stream's start, which timestamps are counted from."""
        start = self._stream.start_time
        return Fraction(start) * self._stream.time_base if start is not None and self._stream.time_base else \
            Fraction(0)

    def _keyframe_index(self) -> list[float]:
        """Seconds from the start of the keyframes the demuxer has indexed, in order (a sampler seeks only
        past one of them).

        MP4/MOV and AVI index every frame in their header, WebM its cues (keyframes); an empty index means
        the sampler never seeks. MP4 indexes decode times, which run ahead of display times by the B-frame
        delay: the index is shifted so that its first keyframe displays at the start, as it does."""
        time_base = self._stream.time_base
        if not time_base:
            return []
        origin = self._origin
        times = sorted({float(entry.timestamp * time_base - origin) for entry in self._stream.index_entries
                        if entry.is_keyframe})
        lead = min(times[0], 0.0) if times else 0.0
        return [time - lead for time in times]

    def _targets(self, sampling: FrameSampling) -> Iterator[float]:
        if sampling.max_fps is not None:
            return (step / sampling.max_fps for step in itertools.count())
        duration = self.info.duration_s
        if duration is None:
            return (float(second) for second in itertools.count())
        return ((step + 0.5) * duration / sampling.count for step in range(sampling.count))

    def _sampled(self, sampling: FrameSampling) -> Iterator[VideoFrame]:
        """The frame nearest each target time, each at most once: decode forward, keeping the frame before
        the one that passes a target, and seek ahead when the index allows."""
        self._decoded_count = 0
        targets = self._targets(sampling)
        target = next(targets, None)
        previous: _Decoded | None = None
        last_yielded = -math.inf
        reader: Iterator[_Decoded] | None = None
        is_new_target, is_at_end = True, False
        while target is not None:
            if is_new_target:  # once per target, so a seek that lands short is never repeated
                seek_to = self._keyframe_to_seek(target, previous.time if previous else 0.0)
                if reader is None or seek_to is not None:
                    if reader is not None:
                        reader.close()
                    reader = self._decoded(seek_to)
                is_new_target = False
            current = next(reader, None)
            if current is None:
                is_at_end = True
                break
            while target is not None and current.time >= target:
                nearer_before = previous is not None and target - previous.time < current.time - target
                pick = previous if nearer_before else current
                if pick.time > last_yielded:
                    yield self._converted(pick)
                    last_yielded = pick.time
                target = next(targets, None)
                is_new_target = True
            previous = current
        if reader is not None:
            reader.close()
        logger.debug("%s: %d frames decoded for the samples", self._name, self._decoded_count)
        if self._decoded_count == 0:
            raise VideoError(f"{self._name}: has no decodable frames")
        if is_at_end:
            self._check_complete(previous)
        if target is not None and sampling.count is not None and previous.time > last_yielded:
            yield self._converted(previous)  # the file ended a little before its declared duration

    def _check_complete(self, last: _Decoded) -> None:
        """VideoError when the frames end well before the declared duration: a file cut short (an interrupted
        upload) whose header survived. A shortfall under a quarter of the duration, or under
        _MIN_MISSING_S, passes: a container's duration also counts an audio track that runs on."""
        declared = self.info.duration_s
        if declared is None:
            return
        ended = last.time + (1 / self.info.fps if self.info.fps else _FALLBACK_FRAME_PERIOD_S)
        if ended < _MIN_COMPLETE_SHARE * declared and declared - ended >= _MIN_MISSING_S:
            raise VideoError(f"{self._name}: truncated or corrupt video: its frames end at {ended:.1f} s of the "
                             f"{declared:.1f} s it declares")

    def _keyframe_to_seek(self, target: float, position: float) -> float | None:
        """target, when an indexed keyframe lies between position (where decoding stands) and target, far
        enough past position for a seek to save work; None to decode on. The demuxer seeks to the last
        keyframe at or before the time it is given."""
        slot = bisect.bisect_right(self._keyframes, target) - 1
        if slot < 0 or self._keyframes[slot] <= position + _SEEK_MIN_GAP_S:
            return None
        return target

    def _decoded(self, seek_to: float | None) -> Iterator[_Decoded]:
        """Every frame from the last keyframe at or before seek_to (from where the demuxer stands when None),
        checked against the caps."""
        stream, limits = self._stream, self._limits
        if seek_to is not None:
            self._container.seek(round((seek_to + self._origin) / stream.time_base), stream=stream,
                                 backward=True)
        origin = float(self._origin)
        period = 1 / self.info.fps if self.info.fps else _FALLBACK_FRAME_PERIOD_S
        index, time = None, None
        for packet in self._container.demux(stream):
            for frame in packet.decode():
                self._decoded_count += 1
                if self._check is not None and self._decoded_count % CHECK_EVERY_FRAMES == 0:
                    self._check()
                if self._decoded_count > limits.max_frames_decoded:
                    raise VideoTooLargeError(f"{self._name}: more than {limits.max_frames_decoded:,} frames to "
                                             "decode (frames decoded cap)")
                if frame.width * frame.height > limits.max_frame_pixels:
                    raise VideoTooLargeError(f"{self._name}: a {frame.width}x{frame.height} frame is too large "
                                             f"(frame size cap: at most {limits.max_frame_pixels:,} pixels a frame)")
                time = frame.time - origin if frame.time is not None else (time + period if time is not None
                                                                           else 0.0)
                if time > limits.max_duration_s:
                    raise VideoTooLargeError(f"{self._name}: has a frame at {time:.1f} s, past the duration cap of "
                                             f"{limits.max_duration_s:g} s (its header declares "
                                             f"{_seconds(self.info.duration_s)})")
                if index is None:
                    index = 0 if seek_to is None or not self.info.fps else round(max(time, 0.0) * self.info.fps)
                else:
                    index += 1
                yield _Decoded(frame, index, max(time, 0.0))

    def _converted(self, decoded: _Decoded) -> VideoFrame:
        pixels = upright(decoded.frame.to_ndarray(format="rgb24"), _display_matrix(decoded.frame))
        return VideoFrame(decoded.index, decoded.time, np.ascontiguousarray(pixels))


@dataclass(frozen=True)
class _Decoded:
    frame: av.VideoFrame
    index: int
    time: float


def _display_matrix(frame: av.VideoFrame) -> tuple[int, ...] | None:
    """The frame's 3 x 3 display matrix (nine int32, row-major), or None when it has none."""
    for entry in frame.side_data:  # iterating yields the entries themselves
        if entry.type.name == "DISPLAYMATRIX":
            raw = bytes(entry)
            return tuple(np.frombuffer(raw[:36], dtype="<i4").tolist()) if len(raw) >= 36 else None
    return None


def upright(pixels: np.ndarray, matrix: tuple[int, ...] | None) -> np.ndarray:
    """The frame as players show it, by FFmpeg's own rule (fftools' autorotate): a clockwise turn of 90, 180 or
    270 degrees read from the display matrix, with the mirroring a negative determinant adds. Other angles and
    a singular matrix leave the frame as stored."""
    if matrix is None:
        return pixels
    scale_x, scale_y = math.hypot(matrix[0], matrix[3]), math.hypot(matrix[1], matrix[4])
    if scale_x == 0 or scale_y == 0:
        return pixels
    theta = round(math.degrees(math.atan2(matrix[1] / scale_y, matrix[0] / scale_x)))
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)  # clockwise degrees in [0, 360)
    if abs(theta - 90) < 1:  # transpose: cclock_flip, or clock
        return np.rot90(pixels, 1)[::-1] if matrix[3] > 0 else np.rot90(pixels, -1)
    if abs(theta - 180) < 1:  # hflip, vflip as the matrix's diagonal says
        return pixels[::-1 if matrix[4] < 0 else 1, ::-1 if matrix[0] < 0 else 1]
    if abs(theta - 270) < 1:  # transpose: clock_flip, or cclock
        return np.rot90(pixels, -1)[::-1] if matrix[3] < 0 else np.rot90(pixels, 1)
    if abs(theta) < 1 and matrix[4] < 0:
        return pixels[::-1]
    return pixels


def _opened_file(source: bytes | str | os.PathLike, max_bytes: int, name: str | None) -> tuple[str, BinaryIO]:
    """(name for messages, a seekable binary file), refusing an oversized or empty input before reading it.

    Paths are opened by Python, never handed to FFmpeg as URLs (which could name a protocol)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        name = name or UPLOAD_NAME
        size = len(source) if not isinstance(source, memoryview) else source.nbytes
        _check_size(name, size, max_bytes)
        return name, io.BytesIO(bytes(source))
    path = Path(source)
    name = name or path.name
    try:
        file = open(path, "rb")  # open_video's with block closes it
    except FileNotFoundError:
        raise VideoError(f"{name}: file not found ({path})") from None
    except IsADirectoryError:
        raise VideoError(f"{name}: is a directory, not a video file") from None
    except OSError as error:
        raise VideoError(f"{name}: cannot read the file: {error.strerror or error}") from None
    try:
        _check_size(name, os.fstat(file.fileno()).st_size, max_bytes)
    except VideoError:
        file.close()
        raise
    return name, file


def _check_size(name: str, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise VideoTooLargeError(f"{name}: {size:,} bytes is too large (byte cap: at most {max_bytes:,} bytes)")
    if size == 0:
        raise VideoError(f"{name}: empty file, not a video")


def _seconds(duration: float | None) -> str:
    return "no duration" if duration is None else f"{duration:.1f} s"


def _reason(error: Exception) -> str:
    """FFmpeg's words for a failure, without PyAV's errno prefix and file name."""
    return getattr(error, "strerror", None) or str(error) or type(error).__name__
