"""Every reported metric against a value worked out by hand on a tiny example."""
import json
import math

import numpy as np
import pytest
from scipy.special import expit, logit

from deepfake_detector.components.evaluation.metrics import (
    calibration_bins,
    choose_threshold,
    compute_scores,
    equal_error_rate,
    positive_class_ece,
    precision_recall_points,
    predict_labels,
    roc_points,
    top_label_ece,
    tpr_at_fpr,
    youden_threshold,
)


def logit_middle(lower, upper):
    """The middle of (lower, upper] in logit space: where a tied threshold is placed."""
    return expit((logit(lower) + logit(upper)) / 2)

# Three real, five fake; at threshold 0.5 only the real 0.7 is wrong:
#   predicted   0    0    1    1     1    1    1    1
#   TN = 2, FP = 1, FN = 0, TP = 5
IMBALANCED_LABELS = [0, 0, 0, 1, 1, 1, 1, 1]
IMBALANCED_PROBS = [0.1, 0.4, 0.7, 0.55, 0.6, 0.8, 0.9, 0.95]

# Four of each; ranked from the top: 0.9F 0.8F 0.7F 0.6R 0.4F 0.3R 0.2R 0.1R.
#   threshold  FPR   FNR  (FNR = 1 - TPR)
#   0.7        0     1/4
#   0.6        1/4   1/4   <- the ROC curve touches FPR = FNR here: EER 0.25 at threshold 0.6
#   0.4        1/4   0
BALANCED_LABELS = [0, 0, 0, 0, 1, 1, 1, 1]
BALANCED_SCORES = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9]

# Four real, three fake; ranked: 0.7F 0.6F 0.5R 0.4F 0.3R 0.2R 0.1R.
#   threshold  TPR  FPR   J = TPR - FPR   FNR - FPR
#   0.6        2/3  0     0.667           +1/3
#   0.5        2/3  1/4   0.417           +1/12   <- closest to FPR = FNR: EER threshold 0.5
#   0.4        1    1/4   0.750  <- max J         -1/4
# so EER and Youden disagree: 0.5 versus 0.4.
SPLIT_DECISION_LABELS = [0, 0, 0, 0, 1, 1, 1]
SPLIT_DECISION_SCORES = [0.1, 0.2, 0.3, 0.5, 0.4, 0.6, 0.7]


@pytest.fixture(scope="module")
def imbalanced_scores():
    return compute_scores(IMBALANCED_LABELS, IMBALANCED_PROBS, threshold=0.5, n_bins=10)


def test_accuracy_counts_correct_calls(imbalanced_scores):
    assert imbalanced_scores["accuracy"] == pytest.approx(7 / 8)


def test_precision_is_share_of_fake_calls_that_are_fake(imbalanced_scores):
    assert imbalanced_scores["precision"] == pytest.approx(5 / 6)


def test_recall_is_share_of_fakes_caught(imbalanced_scores):
    assert imbalanced_scores["recall"] == pytest.approx(1.0)


def test_f1_is_harmonic_mean_of_precision_and_recall(imbalanced_scores):
    # 2 * (5/6) * 1 / (5/6 + 1) = 10/11
    assert imbalanced_scores["f1"] == pytest.approx(10 / 11)


def test_balanced_accuracy_averages_per_class_recall(imbalanced_scores):
    # (TPR 5/5 + TNR 2/3) / 2
    assert imbalanced_scores["balanced_accuracy"] == pytest.approx(5 / 6)


def test_roc_auc_is_share_of_correctly_ranked_pairs(imbalanced_scores):
    # 15 (real, fake) pairs; only the real 0.7 outranks fakes (0.55 and 0.6): 13/15 right.
    assert imbalanced_scores["roc_auc"] == pytest.approx(13 / 15)


def test_average_precision_averages_precision_at_each_fake(imbalanced_scores):
    # Ranked: 0.95F 0.9F 0.8F 0.7R 0.6F 0.55F -> precision at each fake 1, 1, 1, 4/5, 5/6.
    assert imbalanced_scores["average_precision"] == pytest.approx((3 + 4 / 5 + 5 / 6) / 5)


def test_log_loss_is_mean_negative_log_likelihood(imbalanced_scores):
    likelihoods = [0.9, 0.6, 0.3, 0.55, 0.6, 0.8, 0.9, 0.95]
    assert imbalanced_scores["log_loss"] == pytest.approx(-sum(math.log(p) for p in likelihoods) / 8)


def test_scores_hold_every_reported_metric_as_a_finite_float(imbalanced_scores):
    numbers = {"accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "average_precision", "eer",
               "log_loss", "ece_positive_class", "ece_top_label", "threshold", "fpr_resolution"}
    assert set(imbalanced_scores) == numbers | {"tpr_at_fpr_1pct", "tpr_at_fpr_1pct_note"}
    assert all(isinstance(imbalanced_scores[k], float) and math.isfinite(imbalanced_scores[k]) for k in numbers)


def test_score_equal_to_threshold_is_called_fake():
    assert predict_labels([0.49, 0.5, 0.51], 0.5).tolist() == [0, 1, 1]


def test_eer_where_roc_touches_the_equal_error_line():
    # The EER point is reached by every threshold in (0.4, 0.6]; its middle in logit space is 0.5.
    assert equal_error_rate(BALANCED_LABELS, BALANCED_SCORES) == pytest.approx((0.25, 0.5))


def test_eer_is_interpolated_between_roc_points():
    # Ranked: 0.8F, then 0.5 shared by one real and one fake. ROC points (FPR, TPR):
    # (0, 0.5) at 0.8 and (0.5, 1) at 0.5; FPR = 1 - TPR halfway along, at FPR 0.25.
    # Both points are 0.25 from balance; the tie goes to the higher one, reached by (0.5, 0.8]:
    # the middle is sigmoid((0 + log 4) / 2) = 2/3.
    assert equal_error_rate([0, 1, 0, 1], [0.2, 0.5, 0.5, 0.8]) == pytest.approx((0.25, 2 / 3))


def test_eer_threshold_is_the_operating_point_closest_to_balance():
    rate, threshold = equal_error_rate(SPLIT_DECISION_LABELS, SPLIT_DECISION_SCORES)
    # Between thresholds 0.5 (FPR 1/4, FNR 1/3) and 0.4 (FPR 1/4, FNR 0) FNR falls to 1/4.
    assert rate == pytest.approx(0.25)
    # The point at 0.5 is reached by (0.4, 0.5]: the same calls on every image, with a margin to 0.4.
    assert threshold == pytest.approx(logit_middle(0.4, 0.5))
    assert (predict_labels(SPLIT_DECISION_SCORES, threshold) == predict_labels(SPLIT_DECISION_SCORES, 0.5)).all()


def test_youden_picks_the_threshold_with_largest_tpr_minus_fpr():
    assert youden_threshold(SPLIT_DECISION_LABELS, SPLIT_DECISION_SCORES) == pytest.approx(logit_middle(0.3, 0.4))


def test_youden_tie_goes_to_higher_threshold():
    # J = 0.75 both at 0.7 (TPR 3/4, FPR 0) and at 0.4 (TPR 1, FPR 1/4); 0.7's point spans (0.6, 0.7].
    assert youden_threshold(BALANCED_LABELS, BALANCED_SCORES) == pytest.approx(logit_middle(0.6, 0.7))


def test_choose_threshold_eer_strategy():
    assert choose_threshold(SPLIT_DECISION_LABELS, SPLIT_DECISION_SCORES, "eer") == pytest.approx(
        logit_middle(0.4, 0.5))


def test_choose_threshold_youden_strategy():
    assert choose_threshold(SPLIT_DECISION_LABELS, SPLIT_DECISION_SCORES, "youden") == pytest.approx(
        logit_middle(0.3, 0.4))


# A perfectly separated validation split: the highest real scores 0.2, the lowest fake 0.6.
SEPARATED_VAL_LABELS = [0, 0, 0, 1, 1, 1]
SEPARATED_VAL_SCORES = [0.05, 0.1, 0.2, 0.6, 0.9, 0.95]
# A separable test split with a fake below the lowest validation fake and a real above the highest real.
SEPARABLE_TEST_LABELS = [0, 0, 1, 1, 1]
SEPARABLE_TEST_SCORES = [0.02, 0.3, 0.45, 0.7, 0.99]


@pytest.mark.parametrize("strategy", ["eer", "youden"])
def test_separated_validation_puts_the_threshold_inside_the_gap(strategy):
    threshold = choose_threshold(SEPARATED_VAL_LABELS, SEPARATED_VAL_SCORES, strategy)
    assert 0.2 < threshold < 0.6
    assert threshold == pytest.approx(logit_middle(0.2, 0.6))  # about 0.38


@pytest.mark.parametrize("strategy", ["eer", "youden"])
def test_separable_test_split_is_called_right_at_the_validation_threshold(strategy):
    # At the lowest validation fake (0.6) the test fake at 0.45 would be missed: recall 2/3.
    threshold = choose_threshold(SEPARATED_VAL_LABELS, SEPARATED_VAL_SCORES, strategy)
    scores = compute_scores(SEPARABLE_TEST_LABELS, SEPARABLE_TEST_SCORES, threshold, n_bins=10)
    assert (scores["recall"], scores["accuracy"]) == (1.0, 1.0)


@pytest.mark.parametrize("strategy", ["eer", "youden"])
def test_saturated_separated_scores_get_a_threshold_of_one_half(strategy):
    # Every threshold in (0, 1] separates them; 0 and 1 are logits -16.1 and +16.1 once clipped.
    assert choose_threshold([0, 0, 1, 1], [0.0, 0.0, 1.0, 1.0], strategy) == pytest.approx(0.5)


@pytest.mark.parametrize(("score", "called_fake"), [(1.0, 1), (0.0, 0)])
@pytest.mark.parametrize("strategy", ["eer", "youden"])
def test_all_scores_saturated_at_one_value_keep_the_threshold_inside_zero_one(strategy, score, called_fake):
    threshold = choose_threshold([0, 1, 0, 1], [score] * 4, strategy)
    assert 0.0 < threshold < 1.0
    assert predict_labels([score] * 4, threshold).tolist() == [called_fake] * 4


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("strategy", ["eer", "youden"])
def test_threshold_is_never_exactly_zero_or_one(strategy, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 30)
    labels[:2] = [0, 1]
    scores = rng.choice([0.0, 1.0, float(np.float32(1 - 2 ** -24)), 1e-9, *rng.random(4)], size=30)
    threshold = choose_threshold(labels, scores, strategy)
    assert 0.0 < threshold < 1.0


@pytest.mark.parametrize("seed", range(10))
def test_middle_threshold_makes_the_same_calls_as_the_operating_point_it_stands_for(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 40)
    labels[:2] = [0, 1]
    scores = np.round(rng.random(40), 2).astype(np.float32).astype(np.float64)
    threshold = youden_threshold(labels, scores)
    # The operating point's own score: the lowest score at or above the threshold.
    own = scores[scores >= threshold].min()
    assert (predict_labels(scores, threshold) == predict_labels(scores, own)).all()
    assert scores[scores < threshold].max(initial=0.0) < threshold <= own


def test_choose_threshold_number_is_used_as_is():
    assert choose_threshold(SPLIT_DECISION_LABELS, SPLIT_DECISION_SCORES, 0.3) == 0.3


def test_choose_threshold_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="unknown threshold strategy 'f1'"):
        choose_threshold(SPLIT_DECISION_LABELS, SPLIT_DECISION_SCORES, "f1")


def test_tpr_at_fpr_1pct_without_any_false_positive():
    # Reals top out at 0.7; above it the fakes 0.8, 0.9, 0.95 are 3 of 5.
    assert tpr_at_fpr(IMBALANCED_LABELS, IMBALANCED_PROBS, 0.01) == pytest.approx(3 / 5)


def test_tpr_at_fpr_1pct_allows_one_false_positive_in_a_hundred():
    # 99 reals at 0.1 and one at 0.8: down to threshold 0.6 FPR is 1/100, catching 0.9, 0.7, 0.6.
    labels = [0] * 100 + [1] * 4
    scores = [0.1] * 99 + [0.8] + [0.9, 0.7, 0.6, 0.05]
    assert tpr_at_fpr(labels, scores, 0.01) == pytest.approx(3 / 4)
    reported = compute_scores(labels, scores, 0.5, n_bins=10)
    assert reported["tpr_at_fpr_1pct"] == pytest.approx(3 / 4)
    assert (reported["tpr_at_fpr_1pct_note"], reported["fpr_resolution"]) == (None, pytest.approx(0.01))


def test_tpr_at_1pct_fpr_with_fewer_than_100_real_images_is_not_resolvable():
    # 60 reals: the smallest false positive rate above 0 is 1/60, so "TPR at 1 % FPR" would be TPR at 0 %.
    labels = [0] * 60 + [1] * 60
    scores = np.linspace(0.01, 0.99, 120)
    reported = compute_scores(labels, scores, 0.5, n_bins=10)
    assert reported["tpr_at_fpr_1pct"] is None
    assert reported["tpr_at_fpr_1pct_note"].startswith("not resolvable: 60 real images")
    assert reported["fpr_resolution"] == pytest.approx(1 / 60)
    json.dumps(reported, allow_nan=False)


# Six probabilities, three equal-width bins [0, 1/3), [1/3, 2/3), [2/3, 1]:
#   bin 0: 0.1 (real), 0.2 (fake)   mean 0.15,  fraction fake 0.5 -> gap 0.35
#   bin 1: 0.5 (real), 0.6 (fake)   mean 0.55,  fraction fake 0.5 -> gap 0.05
#   bin 2: 0.9 (fake), 0.95 (fake)  mean 0.925, fraction fake 1.0 -> gap 0.075
# ECE = (2 * 0.35 + 2 * 0.05 + 2 * 0.075) / 6 = 0.95 / 6
CALIBRATION_LABELS = [0, 1, 0, 1, 1, 1]
CALIBRATION_PROBS = [0.1, 0.2, 0.5, 0.6, 0.9, 0.95]


def test_positive_class_ece_with_three_bins():
    assert positive_class_ece(CALIBRATION_LABELS, CALIBRATION_PROBS, 3) == pytest.approx(0.95 / 6)


def test_positive_class_ece_bin_edge_belongs_to_the_upper_bin():
    # Two bins: 0.5 joins [0.5, 1]: bin 0 gap |0.5 - 0.15| = 0.35 (2 images);
    # bin 1 mean (0.5 + 0.6 + 0.9 + 0.95) / 4 = 0.7375, fraction fake 3/4 -> gap 0.0125 (4 images).
    expected = (2 * 0.35 + 4 * 0.0125) / 6
    assert positive_class_ece(CALIBRATION_LABELS, CALIBRATION_PROBS, 2) == pytest.approx(expected)


def test_top_label_ece_compares_confidence_in_the_predicted_class_with_accuracy():
    # Predicted class (fake at P(fake) >= 0.5) and its confidence max(p, 1 - p):
    #   p     0.1  0.2  0.5  0.6  0.9  0.95
    #   pred  R    R    F    F    F    F
    #   conf  0.9  0.8  0.5  0.6  0.9  0.95
    #   right yes  no   no   yes  yes  yes
    # Three bins of [0, 1]: [1/3, 2/3) holds 0.5, 0.6: confidence 0.55, accuracy 1/2 -> gap 0.05;
    # [2/3, 1] holds 0.9, 0.8, 0.9, 0.95: confidence 0.8875, accuracy 3/4 -> gap 0.1375.
    expected = (2 * 0.05 + 4 * 0.1375) / 6
    assert top_label_ece(CALIBRATION_LABELS, CALIBRATION_PROBS, 3) == pytest.approx(expected)
    assert expected != pytest.approx(positive_class_ece(CALIBRATION_LABELS, CALIBRATION_PROBS, 3))


@pytest.mark.parametrize("ece", [positive_class_ece, top_label_ece])
def test_ece_is_zero_for_certain_and_correct_predictions(ece):
    assert ece([0, 0, 1, 1], [0.0, 0.0, 1.0, 1.0], 10) == pytest.approx(0.0)


def test_calibration_bins_leave_out_empty_bins():
    bins = calibration_bins(CALIBRATION_LABELS, CALIBRATION_PROBS, 4)
    # [0.25, 0.5) is empty; 0.5 and 0.6 share [0.5, 0.75).
    assert [(b["bin_lower"], b["count"]) for b in bins] == [(0.0, 2), (0.5, 2), (0.75, 2)]
    assert bins[1]["mean_predicted"] == pytest.approx(0.55)
    assert bins[1]["fraction_positive"] == pytest.approx(0.5)


def test_constant_predictor_scores_chance_without_nan():
    scores = compute_scores([0, 0, 1, 1, 1], [0.5] * 5, threshold=0.5, n_bins=10)
    assert scores["roc_auc"] == pytest.approx(0.5)
    assert scores["eer"] == pytest.approx(0.5)
    assert scores["average_precision"] == pytest.approx(3 / 5)
    assert all(math.isfinite(v) for v in scores.values() if isinstance(v, float))


def test_nothing_called_fake_gives_zero_precision_not_nan():
    scores = compute_scores([0, 0, 1, 1, 1], [0.5] * 5, threshold=0.6, n_bins=10)
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.0, 0.0, 0.0)


def test_constant_predictor_eer_threshold_calls_everything_fake():
    # The only operating point a threshold above 0 reaches besides "nothing fake" is "everything fake",
    # reached by (0, 0.3].
    rate, threshold = equal_error_rate([0, 1, 0, 1], [0.3] * 4)
    assert rate == pytest.approx(0.5)
    assert 0.0 < threshold <= 0.3


def test_one_class_only_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="both classes"):
        compute_scores([1, 1, 1], [0.2, 0.5, 0.9], threshold=0.5, n_bins=10)


def test_probabilities_outside_zero_one_are_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        compute_scores([0, 1], [-0.1, 0.9], threshold=0.5, n_bins=10)


def test_roc_points_run_corner_to_corner_as_strict_json():
    points = roc_points(BALANCED_LABELS, BALANCED_SCORES)
    assert points[0] == {"fpr": 0.0, "tpr": 0.0, "threshold": None}
    assert (points[-1]["fpr"], points[-1]["tpr"]) == (1.0, 1.0)
    json.dumps(points, allow_nan=False)


def test_precision_recall_points_end_at_zero_recall_without_threshold():
    points = precision_recall_points(BALANCED_LABELS, BALANCED_SCORES)
    assert points[-1] == {"precision": 1.0, "recall": 0.0, "threshold": None}
    assert np.all(np.diff([p["recall"] for p in points]) <= 0)
    json.dumps(points, allow_nan=False)
