"""Did the model learn: validation ROC AUC with a bootstrap interval, and the warning for a model at
chance or inverted."""
import logging

import numpy as np
import pytest

from deepfake_detector.components.evaluation.learning import check_learning, read_learning_check

LABELS = np.array([0] * 30 + [1] * 30)
SEPARATED = np.concatenate([np.linspace(0.05, 0.4, 30), np.linspace(0.6, 0.95, 30)])


def test_a_model_that_separates_validation_learned_and_says_nothing_loud(caplog):
    with caplog.at_level(logging.INFO):
        check = check_learning(LABELS, SEPARATED, seed=0, stage="train")
    assert (check.roc_auc, check.ci_low, check.is_above_chance, check.warning()) == (1.0, 1.0, True, None)
    assert "train: validation ROC AUC 1.000" in caplog.text and "WARNING" not in caplog.text


def test_a_model_at_chance_gets_the_loud_warning(caplog):
    scores = np.random.default_rng(0).random(60)
    with caplog.at_level(logging.WARNING):
        check = check_learning(LABELS, scores, seed=0, stage="evaluate")
    assert check.ci_low <= 0.5 <= check.ci_high and not check.is_above_chance
    assert "evaluate: THE MODEL DID NOT LEARN" in caplog.text


def test_an_inverted_model_is_called_inverted():
    check = check_learning(LABELS, 1.0 - SEPARATED, seed=0, stage="evaluate")
    assert check.ci_high < 0.5
    assert check.warning().startswith("THE MODEL RANKS FAKES BELOW REALS")


def test_a_validation_split_of_one_class_cannot_be_judged(caplog):
    with caplog.at_level(logging.WARNING):
        assert check_learning([1, 1, 1], [0.2, 0.5, 0.9], seed=0, stage="train") is None
    assert "one class only" in caplog.text


def test_the_check_reads_back_from_scores_json_keys():
    check = check_learning(LABELS, SEPARATED, seed=0, stage="train")
    assert read_learning_check({**check.as_scores(), "n_val": 60}) == check
    assert read_learning_check({"roc_auc": 0.9}) is None


@pytest.mark.parametrize("seed", [0, 1])
def test_the_interval_is_reproducible_from_its_seed(seed):
    scores = np.random.default_rng(5).random(60)
    assert check_learning(LABELS, scores, seed=seed, stage="x") == check_learning(LABELS, scores, seed=seed, stage="x")


def test_frames_of_few_videos_get_the_wider_interval_their_videos_allow():
    """Ten videos of eight near-identical frames each are ten pieces of evidence, not eighty: resampled by video,
    the interval of a middling model is wider, and can reach chance where the frame-by-frame one does not."""
    rng = np.random.default_rng(3)
    labels, probs, videos = [], [], []
    for video in range(10):
        label = video % 2
        score = rng.uniform(0.3, 0.9) if label else rng.uniform(0.1, 0.7)  # one score per clip, frames jitter
        for _ in range(8):
            labels.append(label)
            probs.append(float(np.clip(score + rng.normal(0, 0.01), 0, 1)))
            videos.append(f"v{video}.mp4")
    by_frame = check_learning(labels, probs, seed=0, stage="test")
    by_video = check_learning(labels, probs, seed=0, stage="test", videos=videos)
    assert by_video.roc_auc == by_frame.roc_auc
    assert by_video.ci_high - by_video.ci_low > 1.5 * (by_frame.ci_high - by_frame.ci_low)
