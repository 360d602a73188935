"""The frames stage and what validate makes of it: every video of a dataset becomes K frames (the pixels serving
decodes), stills pass as links, a broken video is quarantined with its reason, a killed run resumes, and the frames
of one video never straddle two splits."""
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deepfake_detector.components.data import demo_video
from deepfake_detector.components.data import frames as frames_module
from deepfake_detector.components.data.datasets import read_manifest
from deepfake_detector.components.data.demo_data import render_demo_image
from deepfake_detector.components.data.demo_video import generate_demo_videos, render_demo_video
from deepfake_detector.components.data.frames import FrameExtraction
from deepfake_detector.components.data.ingestion import render_index
from deepfake_detector.components.data.layouts import list_dataset
from deepfake_detector.components.data.validation import DataValidation, group_by_video
from deepfake_detector.config.entities import (
    DataValidationConfig,
    DemoDataConfig,
    FramesConfig,
    SplitFractions,
    VideoSettings,
)
from deepfake_detector.contracts.errors import DataValidationError
from deepfake_detector.contracts.labels import FAKE, REAL
from deepfake_detector.video.decoding import FrameSampling, open_video

DEMO = DemoDataConfig(image_size=96)
FRAMES = 4


def frames_config(root: Path, **video) -> FramesConfig:
    return FramesConfig(root_dir=root / "frames", dataset_dir=root / "frames/dataset",
                        index_file=root / "frames/index.csv", report_file=root / "frames/frames.json",
                        video=VideoSettings(**{"frames_per_video": FRAMES, **video}),
                        ingest_index_file=root / "index.csv", ingest_dataset_dir=root / "dataset")


def write_index(root: Path) -> None:
    listing = list_dataset(root / "dataset", {"fake": ("fake",), "real": ("real",)})
    (root / "index.csv").write_text(render_index(listing.records))


def write_video_dataset(root: Path, videos_per_class: int = 4) -> None:
    generate_demo_videos(DEMO, root / "dataset", videos_per_class, seconds=1.0)
    write_index(root)


def test_each_video_becomes_its_frames_as_serving_decodes_them(tmp_path):
    write_video_dataset(tmp_path, videos_per_class=2)
    (tmp_path / "dataset/real/still.jpg").write_bytes(render_demo_image(DEMO, REAL, 7))
    write_index(tmp_path)
    stage = frames_config(tmp_path)

    result = FrameExtraction(stage).run()

    index = pd.read_csv(stage.index_file, dtype=str, keep_default_na=False)
    frames = index[index["video"] != ""]
    assert (result.n_videos, result.n_frames, result.n_stills, result.n_left_out) == (4, 4 * FRAMES, 1, 0)
    assert sorted(frames["video"].unique()) == ["fake/fake_1.mp4", "fake/fake_2.mp4", "real/real_1.mp4",
                                                "real/real_2.mp4"]
    assert all(path.startswith(f"{video}/frame_") for path, video in zip(frames["path"], frames["video"], strict=True))
    assert set(frames.loc[frames["video"].str.startswith("fake/"), "class_name"]) == {"fake"}
    # The stored frame is, pixel for pixel, what serving's decoder gives for that frame of the upload.
    clip = tmp_path / "dataset/fake/fake_2.mp4"
    with open_video(clip.read_bytes()) as video:
        served = list(video.frames(FrameSampling(count=FRAMES)))
    stored = frames[frames["video"] == "fake/fake_2.mp4"]
    assert [float(t) for t in stored["time_s"]] == [round(frame.timestamp_s, 3) for frame in served]
    for path, frame in zip(stored["path"], served, strict=True):
        assert np.array_equal(np.asarray(Image.open(stage.dataset_dir / path).convert("RGB")), frame.pixels)
    # A still is the same file, linked, not decoded again.
    still = stage.dataset_dir / "real/still.jpg"
    assert still.read_bytes() == (tmp_path / "dataset/real/still.jpg").read_bytes()
    assert os.stat(still).st_ino == os.stat(tmp_path / "dataset/real/still.jpg").st_ino
    report = json.loads(stage.report_file.read_text())
    assert report["per_class"]["real"] == {"stills": 1, "videos": 2, "frames": 2 * FRAMES, "videos_left_out": 0}


def test_a_broken_or_too_long_video_is_left_out_with_its_reason_and_quarantined(tmp_path):
    write_video_dataset(tmp_path, videos_per_class=4)
    clip = (tmp_path / "dataset/fake/fake_1.mp4").read_bytes()
    (tmp_path / "dataset/fake/fake_1.mp4").write_bytes(clip[: len(clip) // 3])   # truncated
    write_index(tmp_path)
    stage = frames_config(tmp_path)
    FrameExtraction(stage).run()
    index = pd.read_csv(stage.index_file, dtype=str, keep_default_na=False)
    broken = index[index["video"] == "fake/fake_1.mp4"]
    assert len(broken) == 1 and broken["problem"].iloc[0].startswith("unusable video: fake/fake_1.mp4")
    assert not (stage.dataset_dir / "fake/fake_1.mp4").exists()

    validation = validation_config(tmp_path, stage)
    result = DataValidation(validation).run()
    quarantine = json.loads(validation.quarantine_file.read_text())
    assert [entry["path"] for entry in quarantine["files"]] == ["fake/fake_1.mp4"]
    assert quarantine["files"][0]["reason"].startswith("unusable video")
    assert result.n_good == 7 * FRAMES

    short = frames_config(tmp_path, max_duration_s=0.5)
    FrameExtraction(short).run()
    report = json.loads(short.report_file.read_text())
    assert report["n_videos"] == 0 and len(report["videos_left_out"]) == 8
    assert any("duration" in entry["reason"] for entry in report["videos_left_out"])


def validation_config(root: Path, stage: FramesConfig) -> DataValidationConfig:
    return DataValidationConfig(root_dir=root / "data", manifest_file=root / "data/manifest.csv",
                                quarantine_file=root / "data/quarantine.json",
                                split_summary_file=root / "data/split_summary.json",
                                dataset_dir=stage.dataset_dir, index_file=stage.index_file, source="demo-video",
                                min_image_size=32, max_bad_fraction=0.5, split=SplitFractions(0.5, 0.25, 0.25))


def test_frames_of_one_video_share_a_split_and_the_manifest_names_their_video(tmp_path):
    write_video_dataset(tmp_path, videos_per_class=4)
    stage = frames_config(tmp_path)
    FrameExtraction(stage).run()
    validation = validation_config(tmp_path, stage)
    DataValidation(validation).run()
    manifest = read_manifest(validation.manifest_file)
    assert len(manifest) == 8 * FRAMES
    assert (manifest.groupby("video")["split"].nunique() == 1).all()
    assert (manifest.groupby("video")["group"].nunique() == 1).all()
    assert manifest.groupby("split")["video"].nunique().to_dict() == {"test": 2, "train": 4, "val": 2}
    summary = json.loads(validation.split_summary_file.read_text())
    assert summary["videos"]["train"] == {"fake": 2, "real": 2, "total": 4}


def test_a_group_spanning_two_videos_joins_them():
    groups = ["a", "b", "c", "d", "e"]
    videos = ["v1", "v1", "v2", "v2", ""]
    assert group_by_video(groups, videos) == ["a", "a", "c", "c", "e"]
    # frame "b" of v1 duplicates frame "c" of v2: both videos become one group
    assert group_by_video(["a", "c", "c", "d"], ["v1", "v1", "v2", "v2"]) == ["a", "a", "a", "a"]


def kill_after(monkeypatch, finished: int) -> list[str]:
    """The frames stage, one video at a time, killed once `finished` videos are done; returns those videos."""
    real_extract = frames_module.extract_frames
    done: list[str] = []

    def extract(source, relative, target_dir, settings):
        if len(done) >= finished:
            raise KeyboardInterrupt  # the kill: nothing after it finishes
        outcome = real_extract(source, relative, target_dir, settings)
        done.append(relative)
        return outcome

    monkeypatch.setattr(frames_module, "MAX_THREADS", 1)
    monkeypatch.setattr(frames_module, "extract_frames", extract)
    return done


def test_a_killed_run_resumes_from_the_videos_it_finished(tmp_path, monkeypatch):
    write_video_dataset(tmp_path, videos_per_class=3)
    stage = frames_config(tmp_path)
    real_extract = frames_module.extract_frames
    kill_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        FrameExtraction(stage).run()
    assert not stage.index_file.exists()
    calls = []
    monkeypatch.setattr(frames_module, "extract_frames", lambda *args: calls.append(args[1]) or real_extract(*args))
    result = FrameExtraction(stage).run()
    assert len(calls) == 3 and result.n_videos == 6   # three done before the kill were kept
    # Other settings start over.
    calls.clear()
    FrameExtraction(dataclasses.replace(stage, video=VideoSettings(frames_per_video=2))).run()
    assert len(calls) == 6


def test_a_resumed_run_decodes_again_a_video_replaced_since_the_kill(tmp_path, monkeypatch):
    write_video_dataset(tmp_path, videos_per_class=2)
    stage = frames_config(tmp_path)
    real_extract = frames_module.extract_frames
    done = kill_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        FrameExtraction(stage).run()
    replaced = tmp_path / "dataset" / done[0]
    replaced.write_bytes(render_demo_video(DEMO, FAKE if done[0].startswith("fake") else REAL, 9, seconds=1.0))
    monkeypatch.setattr(frames_module, "extract_frames", real_extract)
    FrameExtraction(stage).run()
    index = pd.read_csv(stage.index_file, dtype=str, keep_default_na=False)
    first = index[index["video"] == done[0]]["path"].iloc[0]
    with open_video(replaced.read_bytes()) as video:
        expected = next(iter(video.frames(FrameSampling(count=FRAMES))))
    assert np.array_equal(np.asarray(Image.open(stage.dataset_dir / first).convert("RGB")), expected.pixels)


def test_more_samples_than_asked_are_thinned_evenly_keeping_the_ends(tmp_path):
    frames = [(f"v.mp4/frame_{order:03d}.png", float(order)) for order in range(10)]
    (tmp_path / "v.mp4").mkdir()
    for name, _ in frames:
        (tmp_path / name).write_bytes(b"png")
    kept = frames_module._thinned(frames, 4, tmp_path)
    assert [seconds for _, seconds in kept] == [0.0, 3.0, 6.0, 9.0]
    assert sorted(path.name for path in (tmp_path / "v.mp4").iterdir()) == [
        "frame_000.png", "frame_003.png", "frame_006.png", "frame_009.png"]


def test_faceforensics_layout_maps_original_to_real_and_each_method_to_fake(tmp_path):
    for folder, label, count in (("original", REAL, 3), ("Deepfakes", FAKE, 2), ("FaceSwap", FAKE, 2)):
        target = tmp_path / "dataset" / folder / "c23" / "videos"
        target.mkdir(parents=True)
        for index in range(count):
            (target / f"{index:03d}.mp4").write_bytes(render_demo_video(DEMO, label, index + 1, seconds=0.5,
                                                                        size=64))
    listing = list_dataset(tmp_path / "dataset", {"fake": ("fake", "deepfakes", "faceswap"),
                                                  "real": ("real", "original")})
    assert listing.class_counts == {"fake": 4, "real": 3}
    (tmp_path / "index.csv").write_text(render_index(listing.records))
    result = FrameExtraction(frames_config(tmp_path, frames_per_video=2)).run()
    assert (result.n_videos, result.n_frames) == (7, 14)


def test_the_bad_file_limit_counts_a_broken_video_as_one_file_not_as_one_frame(tmp_path):
    write_video_dataset(tmp_path, videos_per_class=4)
    clip = tmp_path / "dataset/real/real_4.mp4"
    clip.write_bytes(clip.read_bytes()[:100])
    write_index(tmp_path)
    stage = frames_config(tmp_path)
    FrameExtraction(stage).run()
    # 1 of 8 videos (12.5 %) is lost; as rows it would be 1 of 29 (3.4 %), under the limit.
    strict = dataclasses.replace(validation_config(tmp_path, stage), max_bad_fraction=0.1)
    with pytest.raises(DataValidationError, match=r"1 of 8 files \(12\.5%\) are unusable.*1 unusable video"):
        DataValidation(strict).run()


def test_a_fake_video_made_from_a_real_ones_footage_is_kept_with_it_in_one_split(tmp_path):
    """FaceForensics++'s fakes keep their original's frames but for the face: their near-duplicate frames make one
    group with both labels. Both videos are kept, whole, in one split; a still labeled both ways is not."""
    write_video_dataset(tmp_path, videos_per_class=4)
    original = tmp_path / "dataset/real/real_1.mp4"
    with open_video(original.read_bytes()) as video:
        frames = [frame.pixels.copy() for frame in video.frames(FrameSampling(count=12))]
    for pixels in frames:  # "the swapped face": a change too small for the perceptual hash
        pixels[44:48, 44:48] = np.clip(pixels[44:48, 44:48].astype(int) + 40, 0, 255)
    (tmp_path / "dataset/fake/swap_of_real_1.mp4").write_bytes(demo_video._encode(iter(frames), 96, 12, "mp4",
                                                                                    1_500_000))
    still = render_demo_image(DEMO, REAL, 3)
    (tmp_path / "dataset/real/still.jpg").write_bytes(still)
    (tmp_path / "dataset/fake/still_copy.jpg").write_bytes(still)
    write_index(tmp_path)
    stage = frames_config(tmp_path)
    FrameExtraction(stage).run()
    validation = validation_config(tmp_path, stage)
    DataValidation(validation).run()
    manifest = read_manifest(validation.manifest_file)
    pair = manifest[manifest["video"].isin(["real/real_1.mp4", "fake/swap_of_real_1.mp4"])]
    assert set(pair["video"]) == {"real/real_1.mp4", "fake/swap_of_real_1.mp4"}
    assert pair["split"].nunique() == 1 and pair["group"].nunique() == 1
    quarantined = {entry["path"]: entry["reason"] for entry in
                   json.loads(validation.quarantine_file.read_text())["files"]}
    assert set(quarantined) == {"real/still.jpg", "fake/still_copy.jpg"}
    assert all(reason.startswith("label conflict") for reason in quarantined.values())
