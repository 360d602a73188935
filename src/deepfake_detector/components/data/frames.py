"""The frames stage: the image tree the pipeline learns from, with every video of the dataset turned into frames.

A video (told by its bytes) gives data.video.frames_per_video frames, decoded and sampled as serving samples an
upload and stored as lossless PNGs, so the model learns from the pixels serving decodes; stills are hard-linked.
docs/data.md#video-datasets-the-frames-stage says what happens to broken videos and how a killed run resumes.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from deepfake_detector.config.entities import FramesConfig, VideoSettings
from deepfake_detector.contracts.errors import DataValidationError, VideoError
from deepfake_detector.contracts.frames_index import PROBLEM_COLUMN, TIME_COLUMN, VIDEO_COLUMN
from deepfake_detector.utils.files import sha256_file, swap_in_directory, write_json_atomic, write_text_atomic
from deepfake_detector.video.decoding import SNIFF_BYTES, FrameSampling, VideoLimits, open_video, sniff_video

logger = logging.getLogger(__name__)

FRAME_NAME = "frame_{order:03d}.png"  # by order of sampling: a variable frame rate may repeat a frame number
JOURNAL = ".frames-done.jsonl"      # in the staging folder: one line per video finished
SETTINGS_FILE = ".frames-settings.json"
# Caps that guard a server against uploads; a dataset's own files are trusted further, but a clip must still
# end: at most this many decoded frames a second of the allowed duration, and files up to this size.
MAX_DECODED_FPS = 240
MAX_VIDEO_BYTES = 64 * 2**30
MAX_THREADS = 8


@dataclass(frozen=True)
class VideoOutcome:
    """One video's result: its frames as (path under the tree, seconds from the start), what its header says, or
    why it was left out; `source` is the file's (size, mtime_ns) when it was read, so a resumed run can tell a
    file replaced since."""

    path: str
    frames: tuple[tuple[str, float], ...]
    info: dict[str, Any] | None
    problem: str | None = None
    source: tuple[int, int] | None = None


@dataclass(frozen=True)
class FramesResult:
    """What the stage wrote, and its counts."""

    index_file: Path
    report_file: Path
    n_stills: int
    n_videos: int
    n_frames: int
    n_left_out: int


def is_video(path: Path) -> bool:
    """Whether the file's first bytes announce a video container (a file that cannot be read is not one: validate
    reports it)."""
    try:
        with open(path, "rb") as file:
            return sniff_video(file.read(SNIFF_BYTES)) is not None
    except OSError:
        return False


def video_limits(settings: VideoSettings) -> VideoLimits:
    return VideoLimits(max_bytes=MAX_VIDEO_BYTES, max_duration_s=settings.max_duration_s,
                       max_frame_pixels=settings.max_frame_pixels,
                       max_frames_decoded=max(1, int(settings.max_duration_s * MAX_DECODED_FPS)))


def file_state(path: Path) -> tuple[int, int]:
    """(size, mtime_ns): enough to tell that a file was replaced since a journal line was written."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def extract_frames(source: Path, relative: str, target_dir: Path, settings: VideoSettings) -> VideoOutcome:
    """The sampled frames of one video written under target_dir/relative/, or the reason there are none.

    A clip that declares no duration is sampled once a second to its end (as serving does); its samples are then
    thinned to frames_per_video spread evenly, so no clip weighs more than another. A write error (a full disk)
    is raised, not taken for a bad video."""
    folder = target_dir / relative
    shutil.rmtree(folder, ignore_errors=True)  # what an earlier, interrupted attempt left
    state = file_state(source) if source.is_file() else None
    try:
        with open_video(source, video_limits(settings), name=relative, threads=1) as video:
            info = {"container": video.info.container, "codec": video.info.codec, "width": video.info.width,
                    "height": video.info.height, "duration_s": video.info.duration_s, "fps": video.info.fps}
            frames = []
            for order, frame in enumerate(video.frames(FrameSampling(count=settings.frames_per_video))):
                name = f"{relative}/{FRAME_NAME.format(order=order)}"
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.ascontiguousarray(frame.pixels), "RGB").save(target_dir / name, "PNG",
                                                                                 compress_level=1)
                frames.append((name, round(frame.timestamp_s, 3)))
    except VideoError as error:
        shutil.rmtree(folder, ignore_errors=True)
        return VideoOutcome(relative, (), None, f"unusable video: {error}", state)
    if not frames:
        return VideoOutcome(relative, (), info, "unusable video: no frames decoded", state)
    return VideoOutcome(relative, _thinned(frames, settings.frames_per_video, target_dir), info, None, state)


def _thinned(frames: list[tuple[str, float]], count: int, target_dir: Path) -> tuple[tuple[str, float], ...]:
    """count of the frames spread evenly (first and last kept), the others' files removed."""
    if len(frames) <= count:
        return tuple(frames)
    keep = set(np.linspace(0, len(frames) - 1, count).round().astype(int).tolist())
    for position, (name, _) in enumerate(frames):
        if position not in keep:
            (target_dir / name).unlink()
    return tuple(frame for position, frame in enumerate(frames) if position in keep)


class FrameExtraction:
    """Writes the frames stage's tree, index and report from the ingest stage's."""

    def __init__(self, config: FramesConfig) -> None:
        self.config = config

    def run(self) -> FramesResult:
        config = self.config
        index = self._read_index()
        staging = self._staging()
        paths = index["path"].tolist()
        videos = [path for path in paths if is_video(config.ingest_dataset_dir / path)]
        outcomes = self._extract_all(videos, staging)
        stills = [path for path in paths if path not in outcomes]
        for path in tqdm(stills, desc="linking stills", unit="file", leave=False, disable=not stills):
            _link(config.ingest_dataset_dir / path, staging / path)
        rows = self._rows(index, outcomes)
        swap_in_directory(staging, config.dataset_dir)
        for name in (JOURNAL, SETTINGS_FILE):  # only now: a kill before the swap keeps what was done
            (config.dataset_dir / name).unlink(missing_ok=True)
        write_text_atomic(config.index_file, rows.to_csv(index=False, lineterminator="\n"))
        result = self._write_report(index, outcomes, rows)
        logger.info("Frames: %d video(s) gave %d frames (%d per video asked), %d still image(s) kept as they are; "
                    "%d video(s) left out", result.n_videos, result.n_frames, config.video.frames_per_video,
                    result.n_stills, result.n_left_out)
        return result

    def _read_index(self) -> pd.DataFrame:
        index_file = self.config.ingest_index_file
        try:
            index = pd.read_csv(index_file, dtype=str, keep_default_na=False)
        except FileNotFoundError:
            raise DataValidationError(f"{index_file}: index not found; run the ingest stage first") from None
        except pd.errors.EmptyDataError:
            raise DataValidationError(f"{index_file}: the index is empty") from None
        if "path" not in index.columns or "class_name" not in index.columns:
            raise DataValidationError(f"{index_file}: expected the columns path,class_name[,split]")
        clashing = [column for column in (VIDEO_COLUMN, TIME_COLUMN, PROBLEM_COLUMN) if column in index.columns]
        if clashing:
            raise DataValidationError(f"{index_file}: the ingest index must not have the column(s) {clashing}")
        return index

    def _staging(self) -> Path:
        """The fixed staging folder beside the tree: kept as it is when a killed run left it for the same settings,
        the same ingest index and the same decoder, else started empty."""
        config = self.config
        staging = config.dataset_dir.with_name(f".{config.dataset_dir.name}.partial")
        settings = json.dumps({"video": asdict(config.video), "index_sha256": sha256_file(config.ingest_index_file),
                               "decoder": f"PyAV {av.__version__}, FFmpeg {av.ffmpeg_version_info}"}, sort_keys=True)
        settings_file = staging / SETTINGS_FILE
        if staging.exists() and not (settings_file.is_file() and settings_file.read_text() == settings):
            shutil.rmtree(staging)
        staging.mkdir(parents=True, exist_ok=True)
        settings_file.write_text(settings)
        return staging

    def _extract_all(self, videos: list[str], staging: Path) -> dict[str, VideoOutcome]:
        """Every video's outcome, those of an interrupted run taken from its journal; videos decode in parallel
        threads (FFmpeg and zlib release the GIL), one decoder thread each."""
        config = self.config
        wanted = set(videos)
        done = {outcome.path: outcome for outcome in _read_journal(staging)
                if outcome.path in wanted and outcome.source == file_state(config.ingest_dataset_dir / outcome.path)
                and all((staging / name).is_file() for name, _ in outcome.frames)}
        if done:
            logger.info("Frames: resuming, %d of %d video(s) done by an earlier run", len(done), len(videos))
        todo = [path for path in videos if path not in done]
        lock = threading.Lock()

        def extract(path: str) -> VideoOutcome:
            outcome = extract_frames(config.ingest_dataset_dir / path, path, staging, config.video)
            with lock, open(staging / JOURNAL, "a", encoding="utf-8") as journal:
                journal.write(json.dumps(asdict(outcome)) + "\n")
            return outcome

        workers = max(1, min(MAX_THREADS, os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for outcome in tqdm(pool.map(extract, todo), total=len(todo), desc="sampling video frames",
                                unit="video", leave=False, disable=not todo):
                done[outcome.path] = outcome
        return done

    def _rows(self, index: pd.DataFrame, outcomes: dict[str, VideoOutcome]) -> pd.DataFrame:
        """Ingest's rows in order, each video's replaced by its frames' (or kept once, with its problem)."""
        rows = []
        for row in index.to_dict("records"):
            outcome = outcomes.get(row["path"])
            if outcome is None:
                rows.append({**row, VIDEO_COLUMN: "", TIME_COLUMN: "", PROBLEM_COLUMN: ""})
            elif outcome.problem:
                rows.append({**row, VIDEO_COLUMN: row["path"], TIME_COLUMN: "", PROBLEM_COLUMN: outcome.problem})
            else:
                rows += [{**row, "path": name, VIDEO_COLUMN: row["path"], TIME_COLUMN: f"{seconds:.3f}",
                          PROBLEM_COLUMN: ""} for name, seconds in outcome.frames]
        return pd.DataFrame(rows, columns=[*index.columns, VIDEO_COLUMN, TIME_COLUMN, PROBLEM_COLUMN])

    def _write_report(self, index: pd.DataFrame, outcomes: dict[str, VideoOutcome], rows: pd.DataFrame
                      ) -> FramesResult:
        config = self.config
        class_of = dict(zip(index["path"], index["class_name"], strict=True))
        per_class: dict[str, Counter] = {}
        for path, class_name in class_of.items():
            counts = per_class.setdefault(class_name, Counter())
            outcome = outcomes.get(path)
            if outcome is None:
                counts["stills"] += 1
            elif outcome.problem:
                counts["videos_left_out"] += 1
            else:
                counts["videos"] += 1
                counts["frames"] += len(outcome.frames)
        left_out = [{"path": path, "reason": outcome.problem} for path, outcome in sorted(outcomes.items())
                    if outcome.problem]
        used = [outcome for outcome in outcomes.values() if not outcome.problem]
        durations = [outcome.info["duration_s"] for outcome in used if outcome.info and outcome.info["duration_s"]]
        result = FramesResult(config.index_file, config.report_file, n_stills=len(class_of) - len(outcomes),
                              n_videos=len(used), n_frames=sum(len(outcome.frames) for outcome in used),
                              n_left_out=len(left_out))
        write_json_atomic(config.report_file, {
            "frames_per_video": config.video.frames_per_video, "max_duration_s": config.video.max_duration_s,
            "max_frame_pixels": config.video.max_frame_pixels,
            "n_stills": result.n_stills, "n_videos": result.n_videos, "n_frames": result.n_frames,
            "n_videos_left_out": result.n_left_out,
            "median_video_duration_s": round(float(np.median(durations)), 3) if durations else None,
            "per_class": {name: {key: counts.get(key, 0) for key in ("stills", "videos", "frames", "videos_left_out")}
                          for name, counts in sorted(per_class.items())},
            "videos_left_out": left_out,
            "videos": [{"path": outcome.path, "frames": len(outcome.frames), **(outcome.info or {})}
                       for outcome in sorted(used, key=lambda outcome: outcome.path)],
        })
        for entry in left_out[:5]:
            logger.warning("Video left out (validate quarantines it): %s", entry["reason"])
        if len(left_out) > 5:
            logger.warning("... and %d more video(s) left out; see %s", len(left_out) - 5, config.report_file)
        return result


def _read_journal(staging: Path) -> Iterator[VideoOutcome]:
    """The videos an interrupted run finished; a line cut short by the kill is skipped."""
    journal = staging / JOURNAL
    if not journal.is_file():
        return
    for line in journal.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
            yield VideoOutcome(entry["path"], tuple((name, float(seconds)) for name, seconds in entry["frames"]),
                               entry["info"], entry["problem"], tuple(entry["source"]) if entry["source"] else None)
        except (ValueError, KeyError, TypeError):
            continue


def _link(source: Path, target: Path) -> None:
    """target as a hard link to source (a copy across file systems), replacing what an earlier run left."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.link")
    temporary.unlink(missing_ok=True)
    if target.is_dir() and not target.is_symlink():  # an earlier run's frames folder of a video by this name
        shutil.rmtree(target)
    if not source.is_file():
        return  # listed but missing (a data.csv row): validate quarantines it, naming the file
    try:
        os.link(source, temporary)
    except OSError:
        shutil.copy2(source, temporary)
    os.replace(temporary, target)
