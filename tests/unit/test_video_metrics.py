"""Video-level evaluation: the aggregation rule and the video threshold are chosen on validation videos (ties go to
mean), test videos are scored at both with intervals over videos, and frame-level intervals resample whole videos."""
import numpy as np
import pandas as pd
import pytest

from deepfake_detector.components.evaluation.bootstrap import (
    HEADLINE_METRICS,
    bootstrap_intervals,
    cluster_bootstrap_intervals,
    frame_clusters,
)
from deepfake_detector.components.evaluation.metrics import choose_threshold, compute_scores
from deepfake_detector.components.evaluation.video_metrics import (
    SplitVideos,
    check_video_splits,
    choose_aggregation,
    evaluate_videos,
    frame_videos,
    has_videos,
    missing_video_classes,
)
from deepfake_detector.contracts.errors import DataValidationError
from deepfake_detector.contracts.video_aggregation import AGGREGATIONS

# Each fake shows in one frame of four; the reals are evenly middling. Averaged, the fakes drown (mean AUC 0.25);
# their most fake frame gives them away (max AUC 1.0), as does top_k_mean (one frame of four), listed later.
MAX_WINS = {"fake/a.mp4": (1, [0.1, 0.1, 0.1, 0.9]), "fake/b.mp4": (1, [0.2, 0.2, 0.2, 0.8]),
            "real/c.mp4": (0, [0.4, 0.4, 0.4, 0.4]), "real/d.mp4": (0, [0.3, 0.35, 0.3, 0.3])}


def split_of(videos: dict) -> SplitVideos:
    names = [name for name, (_, probs) in videos.items() for _ in probs]
    labels = [label for label, probs in videos.values() for _ in probs]
    probs = [p for _, frame_probs in videos.values() for p in frame_probs]
    return SplitVideos.of(names, labels, probs)


def correlated_videos(seed: int, per_class: int = 20, frames: int = 10) -> dict:
    """Videos whose frames barely differ from each other: each clip is one draw, seen `frames` times."""
    rng = np.random.default_rng(seed)
    videos = {}
    for label in (1, 0):
        for index in range(per_class):
            level = rng.normal(0.4 + 0.2 * label, 0.15)
            videos[f"{label}/{index}.mp4"] = (label, np.clip(level + rng.normal(0, 0.01, frames), 0, 1).tolist())
    return videos


def test_max_is_chosen_where_the_fake_shows_in_one_frame():
    rule, aucs = choose_aggregation(split_of(MAX_WINS))
    assert aucs == {"mean": pytest.approx(0.25), "median": pytest.approx(0.0), "max": 1.0, "top_k_mean": 1.0}
    assert rule == "max"  # top_k_mean ties with it and is listed later


def test_rules_that_rank_alike_leave_mean():
    one_frame_each = {f"{label}/{index}.mp4": (label, [p]) for index, (label, p) in
                      enumerate([(1, 0.9), (1, 0.4), (0, 0.5), (0, 0.1)])}
    rule, aucs = choose_aggregation(split_of(one_frame_each))
    assert set(aucs.values()) == {0.75} and rule == "mean"


def test_the_video_threshold_is_chosen_on_the_val_videos_by_the_image_strategy():
    val = split_of(MAX_WINS)
    for strategy in ("eer", "youden"):
        video = evaluate_videos(val, val, threshold=strategy, threshold_rule=strategy, n_bins=5, resamples=0, seed=0)
        assert video["threshold"] == choose_threshold(val.labels, val.aggregated("max"), strategy)
        assert 0.4 < video["threshold"] <= 0.8  # between the highest real and the lowest fake by max
        assert video["threshold_rule"] == strategy


def test_a_given_threshold_is_used_as_is():
    val = split_of(MAX_WINS)
    video = evaluate_videos(val, val, threshold=0.37, threshold_rule="given", n_bins=5, resamples=0, seed=0)
    assert (video["threshold"], video["threshold_rule"]) == (0.37, "given")


def test_test_videos_are_scored_as_compute_scores_scores_their_aggregates_with_intervals_over_videos():
    val, test = split_of(MAX_WINS), split_of(correlated_videos(seed=1))
    video = evaluate_videos(val, test, threshold="eer", threshold_rule="eer", n_bins=5, resamples=300, seed=4)
    expected = compute_scores(test.labels, test.aggregated("max"), video["threshold"], 5)
    for name in ("roc_auc", "accuracy", "balanced_accuracy", "eer", "f1", "average_precision", "log_loss"):
        assert video[name] == expected[name], name
    intervals = bootstrap_intervals(test.labels, test.aggregated("max"), video["threshold"], resamples=300, seed=4)
    assert {key: video[key] for key in intervals} == intervals
    assert (video["aggregation"], video["chosen_on"], video["n_val_videos"], video["n_test_videos"]) == (
        "max", "val videos", 4, 40)
    assert video["frames_per_video"] == 10.0
    assert set(video["aggregation_val_roc_auc"]) == set(AGGREGATIONS)


def test_one_video_of_a_class_is_enough():
    videos = {"fake/only.mp4": (1, [0.7, 0.9]), "real/r1.mp4": (0, [0.2, 0.3]), "real/r2.mp4": (0, [0.4, 0.1])}
    split = split_of(videos)
    video = evaluate_videos(split, split, threshold="eer", threshold_rule="eer", n_bins=5, resamples=100, seed=0)
    assert video["roc_auc"] == 1.0 and video["roc_auc_ci_low"] == 1.0 and video["n_test_videos"] == 3


def test_clustered_frames_get_wider_intervals_than_frames_counted_as_independent():
    videos = correlated_videos(seed=0)
    split = split_of(videos)
    labels = np.repeat(split.labels, split.frame_counts)
    probs = np.concatenate(split.frame_probs)
    clusters = np.repeat(np.arange(len(split.names)), split.frame_counts)
    naive = bootstrap_intervals(labels, probs, 0.5, resamples=1000, seed=1)
    clustered = cluster_bootstrap_intervals(labels, probs, clusters, 0.5, resamples=1000, seed=1)
    for name in HEADLINE_METRICS:
        naive_width = naive[f"{name}_ci_high"] - naive[f"{name}_ci_low"]
        clustered_width = clustered[f"{name}_ci_high"] - clustered[f"{name}_ci_low"]
        # Ten near-copies per video: about sqrt(10) times wider, never as narrow.
        assert clustered_width > 2 * naive_width, name


def test_clusters_of_one_give_the_per_image_intervals():
    rng = np.random.default_rng(0)
    labels = np.repeat([1, 0], 40)
    probs = np.clip(rng.normal(0.35 + 0.3 * labels, 0.2), 0, 1)
    per_image = bootstrap_intervals(labels, probs, 0.5, resamples=400, seed=2)
    clustered = cluster_bootstrap_intervals(labels, probs, np.arange(80), 0.5, resamples=400, seed=2)
    assert clustered == pytest.approx(per_image, abs=1e-12)


def test_each_cluster_resample_is_scored_as_compute_scores_scores_its_frames():
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0])
    probs = np.array([0.8, 0.6, 0.6, 0.3, 0.6, 0.4, 0.3, 0.1, 0.2])
    clusters = np.array([0, 0, 1, 2, 3, 3, 4, 5, 5])
    for seed in range(8):
        draws = np.random.default_rng(seed)
        fakes, reals = draws.integers(0, 3, 3), draws.integers(0, 3, 3)
        chosen = np.concatenate([fakes, 3 + reals])
        rows = np.concatenate([np.flatnonzero(clusters == cluster) for cluster in chosen])
        expected = compute_scores(labels[rows], probs[rows], 0.5, n_bins=5)
        intervals = cluster_bootstrap_intervals(labels, probs, clusters, 0.5, resamples=1, seed=seed)
        for name in HEADLINE_METRICS:
            assert intervals[f"{name}_ci_low"] == pytest.approx(expected[name], abs=1e-12), (seed, name)


def test_a_cluster_with_two_labels_is_refused():
    with pytest.raises(ValueError, match="share its label"):
        cluster_bootstrap_intervals([1, 0, 0, 1], [0.9, 0.1, 0.2, 0.8], ["a", "a", "b", "c"], 0.5, resamples=10, seed=0)


def manifest(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["path", "label", "split", "video"])


VALID = manifest([
    ("fake/a.mp4/0.png", 1, "val", "fake/a.mp4"), ("real/b.mp4/0.png", 0, "val", "real/b.mp4"),
    ("fake/c.mp4/0.png", 1, "test", "fake/c.mp4"), ("real/d.mp4/0.png", 0, "test", "real/d.mp4"),
    ("real/still.png", 0, "test", ""),
])


def test_a_manifest_with_a_video_of_each_class_in_val_and_test_passes():
    check_video_splits(VALID, "manifest.csv")
    assert missing_video_classes(VALID, ("val", "test")) == []
    assert has_videos(VALID) and not has_videos(VALID.drop(columns="video"))


def test_a_split_without_a_real_video_says_what_is_missing():
    stills_only = VALID.assign(video=lambda frame: np.where(frame["path"] == "real/d.mp4/0.png", "", frame["video"]))
    assert missing_video_classes(stills_only, ("val", "test")) == ["the test split has no real videos"]


def test_a_video_across_two_splits_is_refused():
    leaking = pd.concat([VALID, manifest([("fake/a.mp4/1.png", 1, "test", "fake/a.mp4")])])
    with pytest.raises(DataValidationError, match="different splits .*fake/a.mp4"):
        check_video_splits(leaking, "manifest.csv")


def test_a_video_with_two_labels_is_refused():
    mixed = pd.concat([VALID, manifest([("real/a.mp4/1.png", 0, "val", "fake/a.mp4")])])
    with pytest.raises(DataValidationError, match="different labels .*fake/a.mp4"):
        check_video_splits(mixed, "manifest.csv")


def test_still_images_are_clusters_of_their_own_and_no_video_of_their_own():
    videos = frame_videos(manifest([("a", 1, "test", "v.mp4"), ("b", 1, "test", np.nan), ("c", 1, "test", "v.mp4"),
                                    ("d", 0, "test", "")]))
    assert videos.tolist() == ["v.mp4", "", "v.mp4", ""]
    clusters = frame_clusters(videos)
    assert clusters[0] == clusters[2] and len({clusters[0], clusters[1], clusters[3]}) == 3
    assert SplitVideos.of(videos, [1, 1, 1, 0], [0.2, 0.5, 0.4, 0.9]).names == ("v.mp4",)
