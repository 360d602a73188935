"""The evaluator on frames sampled from videos (the manifest's video column): scores.json gains a `video` block with
the rule and threshold chosen on the val videos, the frame-level intervals resample whole videos, and
predictions.csv names each frame's video. Uses tests/pipeline/flat_color_model.py's images and hand-weighted model
(P(fake) rises with red - green), so every score is known."""
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from deepfake_detector.components.evaluation.bootstrap import cluster_bootstrap_intervals, frame_clusters
from deepfake_detector.components.evaluation.evaluator import Evaluator
from deepfake_detector.config.entities import EvaluationConfig
from tests.pipeline.flat_color_model import IMAGE_SIZE, p_fake, write_flat_image, write_red_is_fake_model

# Each fake video shows its fake in one frame of four: averaged it drowns, its most fake frame gives it away.
VAL = {"fake/v1.mp4": (1, [-60, -60, -60, 200]), "fake/v2.mp4": (1, [-40, -40, -40, 150]),
       "real/v3.mp4": (0, [20, 20, 20, 20]), "real/v4.mp4": (0, [0, 10, 0, 0])}
TEST = {"fake/t1.mp4": (1, [-50, -50, 180, -50]), "fake/t2.mp4": (1, [-30, 120, -30, -30]),
        "real/t3.mp4": (0, [30, 30, 30, 30]), "real/t4.mp4": (0, [-10, 5, -10, -10])}
STILL = ("real/still.png", 0, -100)     # a still image among the test frames: no video, a cluster of its own
RESAMPLES, SEED = 200, 5


def write_video_dataset(root, splits, still=STILL):
    """Frames as images under root/dataset/<video>/, a still, and root/manifest.csv with the video column."""
    rows = []
    for split, videos in splits.items():
        for video, (label, differences) in videos.items():
            (root / "dataset" / video).mkdir(parents=True, exist_ok=True)
            for index, difference in enumerate(differences):
                path = f"{video}/frame_{index:06d}.png"
                write_flat_image(root / "dataset" / path, difference, "PNG")
                rows.append({"path": path, "label": label, "split": split, "sha256": path, "group": video,
                             "video": video})
    if still is not None:
        path, label, difference = still
        (root / "dataset" / path).parent.mkdir(parents=True, exist_ok=True)
        write_flat_image(root / "dataset" / path, difference, "PNG")
        rows.append({"path": path, "label": label, "split": "test", "sha256": path, "group": path, "video": ""})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)


def make_config(root, model_file, **settings):
    return EvaluationConfig(
        root_dir=root / "evaluation", model_file=model_file, manifest_file=root / "manifest.csv",
        dataset_dir=root / "dataset", scores_file=root / "scores.json",
        predictions_file=root / "evaluation" / "predictions.csv", plots_dir=root / "evaluation" / "plots",
        split_summary_file=root / "split_summary.json", training_run_file=root / "mlflow_run.json",
        image_size=IMAGE_SIZE, input_fit="crop", batch_size=8, threshold="eer", calibration_bins=5,
        **{"bootstrap": RESAMPLES, "seed": SEED, **settings})


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.h5"
    write_red_is_fake_model(path)
    return path


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory, model_file):
    root = tmp_path_factory.mktemp("videos")
    write_video_dataset(root, {"val": VAL, "test": TEST})
    return Evaluator(make_config(root, model_file)).run()


def test_the_rule_that_ranks_val_videos_best_is_chosen_and_recorded(evaluation):
    video = json.loads(evaluation.scores_file.read_text())["video"]
    assert video["aggregation"] == "max"
    assert video["aggregation_val_roc_auc"]["mean"] == 0.0 and video["aggregation_val_roc_auc"]["max"] == 1.0
    assert (video["chosen_on"], video["threshold_rule"]) == ("val videos", "eer")
    assert (video["n_val_videos"], video["n_test_videos"], video["frames_per_video"]) == (4, 4, 4.0)


def test_the_video_threshold_separates_the_val_videos_by_their_most_fake_frame(evaluation):
    video = evaluation.scores["video"]
    # Highest real by max: p(20) (v3); lowest fake: p(150) (v2).
    assert p_fake(20) < video["threshold"] < p_fake(150)
    assert video["threshold"] != evaluation.threshold


def test_test_videos_are_scored_with_intervals(evaluation):
    video = evaluation.scores["video"]
    assert (video["roc_auc"], video["accuracy"], video["balanced_accuracy"]) == (1.0, 1.0, 1.0)
    for name in ("accuracy", "roc_auc", "eer", "f1", "average_precision"):
        assert video[f"{name}_ci_low"] <= video[name] <= video[f"{name}_ci_high"], name


def test_frame_level_intervals_resample_whole_videos(evaluation):
    scores = evaluation.scores
    predictions = pd.read_csv(evaluation.predictions_file, keep_default_na=False)
    test = predictions[predictions["split"] == "test"]
    expected = cluster_bootstrap_intervals(test["label"], test["p_fake_uncalibrated"],
                                           frame_clusters(test["video"].to_numpy(dtype=object)),
                                           scores["threshold_uncalibrated"], resamples=RESAMPLES, seed=SEED)
    assert {key: scores[key] for key in expected} == pytest.approx(expected)
    assert scores["n_test"] == 17  # 16 frames and the still


def test_predictions_name_each_frames_video_and_leave_it_empty_for_a_still(evaluation):
    predictions = pd.read_csv(evaluation.predictions_file, keep_default_na=False)
    assert list(predictions.columns) == ["path", "label", "split", "p_fake", "p_fake_uncalibrated", "predicted",
                                         "video"]
    by_path = predictions.set_index("path")["video"]
    assert by_path["fake/v1.mp4/frame_000003.png"] == "fake/v1.mp4" and by_path[STILL[0]] == ""


def test_stills_and_videos_without_a_fake_video_in_val_get_frame_metrics_and_no_video_block(tmp_path, model_file,
                                                                                          caplog):
    val = {name: entry for name, entry in VAL.items() if name.startswith("real/")}
    val["fake/as_stills"] = (1, [200])
    write_video_dataset(tmp_path, {"val": val, "test": TEST})
    manifest = pd.read_csv(tmp_path / "manifest.csv", keep_default_na=False)
    manifest.loc[manifest["video"] == "fake/as_stills", "video"] = ""  # a fake still, no fake video
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    with caplog.at_level("WARNING"):
        scores = Evaluator(make_config(tmp_path, model_file)).run().scores
    assert "video" not in scores and "roc_auc_ci_low" in scores
    assert "the val split has no fake videos" in caplog.text


def test_without_intervals_the_video_block_has_none(tmp_path, model_file):
    write_video_dataset(tmp_path, {"val": VAL, "test": TEST}, still=None)
    config = dataclasses.replace(make_config(tmp_path, model_file), bootstrap=0)
    scores = Evaluator(config).run().scores
    assert "roc_auc_ci_low" not in scores and "roc_auc_ci_low" not in scores["video"]
    assert np.isclose(scores["video"]["roc_auc"], 1.0)
