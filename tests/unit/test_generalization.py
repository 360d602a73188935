"""Leave-one-generator-out reporting: per-set intervals, which sets count as seen in training, and the
summary over the unseen ones with its joint bootstrap interval."""
from __future__ import annotations

import numpy as np
import pytest

from deepfake_detector.components.evaluation.bootstrap import bootstrap_intervals, mean_intervals
from deepfake_detector.components.evaluation.cross_dataset import score_row
from deepfake_detector.components.evaluation.generalization import TrainingSources, summarize_unseen
from deepfake_detector.contracts.labels import FAKE, REAL

THRESHOLD = 0.5
RESAMPLES = 400


def overlapping_scores(per_class: int, separation: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """P(fake) of a detector that ranks fakes higher only on average: ROC AUC well inside (0.5, 1)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([FAKE, REAL], per_class)
    probs = np.clip(rng.normal(0.5 + separation * (labels - 0.5), 0.2), 0.0, 1.0)
    return labels, probs


def row_of(name: str, per_class: int = 100, separation: float = 0.2, seed: int = 0, seen: bool = False,
           resamples: int = RESAMPLES) -> dict:
    labels, probs = overlapping_scores(per_class, separation, seed)
    return score_row(name, f"inputs/{name}", labels, probs, THRESHOLD, seen=seen, resamples=resamples, seed=0)


@pytest.mark.parametrize("metric", ["roc_auc", "accuracy", "eer", "average_precision"])
def test_each_set_interval_contains_its_point_estimate(metric):
    row = row_of("other")
    assert row[f"{metric}_ci_low"] < row[metric] < row[f"{metric}_ci_high"]


def test_a_set_with_more_images_gets_a_narrower_interval():
    small, large = row_of("small", per_class=40), row_of("large", per_class=1000)
    width = {name: row["roc_auc_ci_high"] - row["roc_auc_ci_low"] for name, row in (("small", small),
                                                                                  ("large", large))}
    assert width["large"] < width["small"] / 2  # the width shrinks like 1/sqrt(n): 5x fewer images here


def test_no_resamples_means_no_interval_on_a_set():
    row = row_of("other", resamples=0)
    assert row["roc_auc"] is not None and row["roc_auc_ci_low"] is None and row["roc_auc_ci_high"] is None


def test_a_one_class_set_gets_no_interval():
    row = score_row("phone-photos", "photos/", np.full(30, REAL), np.linspace(0, 0.6, 30), THRESHOLD, seen=False,
                    resamples=RESAMPLES, seed=0)
    assert row["accuracy"] == pytest.approx(25 / 30)
    assert all(row[f"{metric}_ci_{end}"] is None for metric in ("roc_auc", "accuracy", "eer", "average_precision")
               for end in ("low", "high"))


@pytest.mark.parametrize(("source", "seen"), [
    ("demo", True), ("demo:a", True), (" Demo:A ", True), ("demo:b", False), ("demo:bilinear", False),
])
def test_bare_demo_is_the_configured_demo_family(source, seen):
    assert TrainingSources(("demo",), demo_style="a").includes(source) is seen


def test_demo_family_named_in_training_matches_a_bare_demo_set():
    assert TrainingSources(("demo:a",), demo_style="a").includes("demo")
    assert not TrainingSources(("demo:a",), demo_style="b").includes("demo")


def test_every_source_of_a_list_counts_as_seen(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    training = TrainingSources(("demo:b", str(photos), "kaggle:Owner/HardFake"), demo_style="a")
    assert training.includes("demo:b")
    assert training.includes(f"{photos}/") and training.includes(f"file://{photos}")
    assert training.includes("kaggle:owner/hardfake/")
    assert not training.includes("demo") and not training.includes(str(tmp_path / "other"))


def test_summary_mean_is_the_mean_of_the_unseen_rows_only():
    predictions = {name: overlapping_scores(60, separation, seed)
                   for name, separation, seed in (("near", 0.1, 1), ("far", 0.4, 2), ("trained", 0.6, 3))}
    rows = [score_row(name, name, *predictions[name], THRESHOLD, seen=name == "trained", resamples=0, seed=0)
            for name in predictions]
    summary = summarize_unseen(rows, predictions, THRESHOLD, resamples=RESAMPLES, seed=0)

    unseen = rows[:2]
    assert (summary["n_sets"], summary["sets"]) == (2, ["near", "far"])
    assert summary["mean_roc_auc"] == pytest.approx(np.mean([row["roc_auc"] for row in unseen]))
    assert summary["mean_accuracy"] == pytest.approx(np.mean([row["accuracy"] for row in unseen]))
    assert (summary["min_roc_auc"], summary["min_roc_auc_set"]) == (rows[0]["roc_auc"], "near")
    assert summary["mean_roc_auc_ci_low"] < summary["mean_roc_auc"] < summary["mean_roc_auc_ci_high"]


def test_a_one_class_set_is_left_out_of_the_summary():
    predictions = {"mixed": overlapping_scores(60, 0.3), "reals": (np.full(20, REAL), np.full(20, 0.2))}
    rows = [score_row(name, name, *predictions[name], THRESHOLD, seen=False, resamples=0, seed=0)
            for name in predictions]
    summary = summarize_unseen(rows, predictions, THRESHOLD, resamples=RESAMPLES, seed=0)
    assert (summary["n_sets"], summary["sets"]) == (1, ["mixed"])
    assert summary["mean_accuracy"] == rows[0]["accuracy"] != rows[1]["accuracy"]


def test_no_unseen_set_gives_a_summary_of_nulls():
    predictions = {"trained": overlapping_scores(30, 0.3)}
    rows = [score_row("trained", "demo", *predictions["trained"], THRESHOLD, seen=True, resamples=0, seed=0)]
    summary = summarize_unseen(rows, predictions, THRESHOLD, resamples=RESAMPLES, seed=0)
    assert summary["n_sets"] == 0 and summary["sets"] == []
    assert all(value is None for key, value in summary.items() if key not in ("n_sets", "sets"))


def test_mean_interval_of_one_set_is_that_sets_own_interval():
    labels, probs = overlapping_scores(50, 0.3)
    assert mean_intervals([(labels, probs)], THRESHOLD, resamples=RESAMPLES, seed=4, metrics=("roc_auc",)) == \
        bootstrap_intervals(labels, probs, THRESHOLD, resamples=RESAMPLES, seed=4, metrics=("roc_auc",))


def test_averaging_independent_sets_narrows_the_interval_of_the_mean():
    """Each resample redraws every set on its own, so the sets' noise partly cancels in the mean."""
    sets = [overlapping_scores(50, 0.3, seed) for seed in range(4)]
    one = mean_intervals(sets[:1], THRESHOLD, resamples=RESAMPLES, seed=0, metrics=("roc_auc",))
    four = mean_intervals(sets, THRESHOLD, resamples=RESAMPLES, seed=0, metrics=("roc_auc",))
    assert four["roc_auc_ci_high"] - four["roc_auc_ci_low"] < 0.75 * (one["roc_auc_ci_high"] - one["roc_auc_ci_low"])
