"""`deepfake-detector predict`: folder scans, CSV/JSON reports equal to the service's answers, failures
reported without stopping the batch, and clear exits when there is nothing to score with."""
from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deepfake_detector import cli
from deepfake_detector.predict_cli import collect_images
from deepfake_detector.serving.training_data import DEMO_NOTICE
from tests.tiny_served_model import REPO_ROOT, TinyModel, copy_config, tiny_model_for_session, write_photo


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> TinyModel:
    return tiny_model_for_session(tmp_path_factory)


@pytest.fixture(scope="module")
def config_root(tmp_path_factory) -> Path:
    return copy_config(tmp_path_factory.mktemp("cli_root"))


@pytest.fixture(scope="module")
def cli_service(tiny_model, config_root):
    """The service the CLI builds, built directly: the CLI's numbers must equal its answers."""
    from deepfake_detector.config import ConfigurationManager
    from deepfake_detector.serving.service import DetectionService

    return DetectionService.from_config(ConfigurationManager(root=config_root).get_serving_config(),
                                        environ=tiny_model.environment())


@pytest.fixture
def photos(tmp_path) -> Path:
    """photos/a.jpg, photos/b.png, photos/nested/deeper/c.JPG, plus files a scan must skip."""
    folder = tmp_path / "photos"
    write_photo(folder / "b.png", seed=2, image_format="PNG")
    write_photo(folder / "a.jpg", seed=1)
    write_photo(folder / "nested" / "deeper" / "c.JPG", seed=3)
    (folder / "notes.txt").write_text("not an image")
    write_photo(folder / ".hidden" / "d.jpg", seed=4)
    (folder / "._a.jpg").write_bytes(b"macOS resource fork")
    return folder


@pytest.fixture
def predict(tiny_model, config_root, monkeypatch, capsys):
    """Runs the CLI in this process against the tiny model; returns (exit code, stdout, stderr)."""
    for name, value in tiny_model.environment().items():
        monkeypatch.setenv(name, value)
    root_logger = logging.getLogger()
    saved = root_logger.handlers[:], root_logger.level

    def run(*arguments: str) -> tuple[int, str, str]:
        code = cli.main(["--root", str(config_root), "predict", *arguments])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield run
    # The CLI configures logging for its process; give pytest its handlers back.
    root_logger.handlers[:], root_logger.level = saved


def direct_answers(service, paths: list[Path], explain: bool = False) -> dict[str, dict]:
    return {str(path): service.analyze(path.read_bytes(), str(path), explain=explain).as_api_dict() for path in paths}


def test_folder_scan_finds_nested_images_sorted_and_skips_hidden_and_non_images(photos):
    inputs = collect_images([photos])
    assert inputs.images == [photos / "a.jpg", photos / "b.png", photos / "nested" / "deeper" / "c.JPG"]
    assert inputs.has_folder and not inputs.missing


def test_no_recursive_scans_only_the_top_level(photos):
    assert collect_images([photos], recursive=False).images == [photos / "a.jpg", photos / "b.png"]


def test_a_file_named_twice_is_scored_once_and_a_missing_path_is_kept_aside(photos, tmp_path):
    inputs = collect_images([photos / "a.jpg", photos, tmp_path / "absent.jpg"])
    assert inputs.images.count(photos / "a.jpg") == 1
    assert inputs.missing == [tmp_path / "absent.jpg"]


def test_csv_report_has_every_nested_image_with_the_services_numbers(predict, cli_service, photos, tmp_path):
    report = tmp_path / "out" / "report.csv"
    code, out, err = predict(str(photos), "--output", str(report))
    assert code == 0, err
    rows = list(csv.DictReader(report.open()))
    expected = direct_answers(cli_service, collect_images([photos]).images)
    assert [row["path"] for row in rows] == list(expected)
    for row in rows:
        answer = expected[row["path"]]
        assert float(row["fake_probability"]) == pytest.approx(answer["fake_probability"], abs=1e-6)
        assert row["label"] == answer["label"]
        assert float(row["threshold"]) == answer["threshold"] == 0.5
        assert row["model_version"] == answer["model_version"] and row["error"] == ""
    assert str(photos / "nested" / "deeper" / "c.JPG") in out
    assert "scored 3 image(s)" in err


def test_json_report_matches_the_api_shape_and_carries_heatmaps_when_asked(predict, cli_service, photos, tmp_path):
    report = tmp_path / "report.json"
    code, _, err = predict(str(photos / "a.jpg"), str(photos / "b.png"), "--explain", "-o", str(report))
    assert code == 0, err
    document = json.loads(report.read_text())
    assert document["model_version"] == cli_service.model_version and document["backend"] == cli_service.backend
    assert document["failures"] == []
    expected = direct_answers(cli_service, [photos / "a.jpg", photos / "b.png"], explain=True)
    assert [result["path"] for result in document["results"]] == list(expected)
    for result in document["results"]:
        answer = expected[result["path"]]
        assert result["fake_probability"] == pytest.approx(answer["fake_probability"], abs=1e-6)
        assert result["label"] == answer["label"] and result["width"] == 300
        assert result["heatmap"]["method"] == answer["heatmap"]["method"]
        assert result["heatmap"]["png"].startswith("data:image/png;base64,")


def test_the_summary_says_what_the_model_was_trained_on_and_that_demo_verdicts_mean_nothing(predict, photos):
    code, out, err = predict(str(photos / "a.jpg"), "--format", "json")
    assert code == 0, err
    assert "trained on: demo, 140 images (train 100, val 20, test 20)" in err
    assert f"notice: {DEMO_NOTICE}" in err
    assert json.loads(out)["notice"] == DEMO_NOTICE


def test_format_json_prints_the_report_to_stdout(predict, photos):
    code, out, _ = predict(str(photos / "a.jpg"), "--format", "json")
    assert code == 0
    assert [result["path"] for result in json.loads(out)["results"]] == [str(photos / "a.jpg")]


def test_corrupt_file_is_reported_the_others_scored_and_the_exit_code_is_1(predict, photos, tmp_path):
    (photos / "broken.jpg").write_bytes(b"this is text, not a JPEG")
    report = tmp_path / "report.csv"
    code, out, err = predict(str(photos), "--output", str(report))
    assert code == 1
    rows = {row["path"]: row for row in csv.DictReader(report.open())}
    broken = str(photos / "broken.jpg")
    assert rows[broken]["label"] == "" and broken in rows[broken]["error"]
    assert sum(row["label"] in ("fake", "real") for row in rows.values()) == 3
    assert "1 failed" in err and f"{broken}: not an image" in err
    assert broken not in out  # the table lists scored images; failures go to stderr


def test_missing_path_is_a_failure_but_the_rest_is_scored(predict, photos, tmp_path):
    code, out, err = predict(str(photos / "a.jpg"), str(tmp_path / "absent.jpg"))
    assert code == 1
    assert str(photos / "a.jpg") in out
    assert f"{tmp_path / 'absent.jpg'}: no such file or folder" in err


def test_output_with_an_unknown_suffix_is_a_usage_error(predict, photos, tmp_path):
    code, _, err = predict(str(photos), "--output", str(tmp_path / "report.txt"))
    assert code == 2
    assert "must end in .csv or .json" in err and not (tmp_path / "report.txt").exists()


def test_folder_without_images_is_a_usage_error(predict, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = predict(str(tmp_path / "empty"))
    assert code == 2 and "no images or videos found" in err and ".mp4" in err


def test_no_model_exits_2_with_a_message_from_the_real_entry_point(config_root, photos, tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"),
                   "DEEPFAKE_DETECTOR_MODEL": str(tmp_path / "absent.h5"),
                   "DEEPFAKE_DETECTOR_EXPORT_DIR": str(tmp_path / "no_export")}
    result = subprocess.run([sys.executable, "-m", "deepfake_detector.cli", "predict", str(photos), "--root",
                             str(config_root)], capture_output=True, text=True, env=environment, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "no model to serve" in result.stderr and "make run" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("crop", ["native", "aligned"])
def test_faces_option_scores_the_face_as_the_api_crops_it(predict, tiny_model, config_root, tmp_path, crop):
    import dataclasses

    import matplotlib.cbook

    from deepfake_detector.config import ConfigurationManager
    from deepfake_detector.serving.service import DetectionService

    portrait = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    report = tmp_path / "faces.json"
    code, _, err = predict(str(portrait), "--faces", "blazeface", "--face-crop", crop, "-o", str(report))
    assert code == 0, err
    [result] = json.loads(report.read_text())["results"]
    assert result["scored_region"] == "face" and len(result["faces"]) == 1
    config = dataclasses.replace(ConfigurationManager(root=config_root).get_serving_config(),
                                 face_detector="blazeface", face_crop=crop)
    service = DetectionService.from_config(config, environ=tiny_model.environment())
    answer = service.analyze(portrait.read_bytes(), str(portrait)).as_api_dict()
    assert result["fake_probability"] == pytest.approx(answer["fake_probability"], abs=1e-6)
    assert result["faces"][0]["box"] == answer["faces"][0]["box"]


def test_videos_in_a_folder_are_scored_beside_the_photos(predict, cli_service, photos, tmp_path):
    from deepfake_detector.components.data.demo_video import render_demo_video
    from deepfake_detector.config.entities import DemoDataConfig

    clip = photos / "clips" / "interview.mp4"
    clip.parent.mkdir()
    clip.write_bytes(render_demo_video(DemoDataConfig(image_size=128), 1, 1, seconds=1.0, fps=8, size=128))
    (photos / "clips" / "broken.webm").write_bytes(clip.read_bytes()[:600])
    report = tmp_path / "report.csv"
    code, out, err = predict(str(photos), "--output", str(report))
    assert code == 1, err  # the broken clip fails, the rest is scored
    rows = {row["path"]: row for row in csv.DictReader(report.open())}
    video = rows[str(clip)]
    answer = cli_service.analyze_upload(clip.read_bytes(), str(clip)).as_api_dict()
    assert video["kind"] == "video" and int(video["frames"]) == len(answer["frames"]) == 8
    assert float(video["fake_probability"]) == pytest.approx(answer["fake_probability"], abs=1e-6)
    assert rows[str(photos / "a.jpg")]["kind"] == "image"
    # named .webm, judged by its content: the first 600 bytes of an mp4
    assert rows[str(photos / "clips" / "broken.webm")]["error"].endswith(
        "broken.webm: not a readable mp4 file: Invalid data found when processing input")
    assert "scored 3 image(s) and 1 video(s)" in err and "0/8 frames" in out
