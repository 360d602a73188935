"""Bootstrap intervals: hand-checked distributions, the same numbers as compute_scores per resample,
stratification, seeding, and the switch-off."""
import math
import re

import numpy as np
import pytest

from deepfake_detector.components.evaluation.bootstrap import (
    HEADLINE_METRICS,
    bootstrap_intervals,
    percentile_interval,
    stratified_resamples,
)
from deepfake_detector.components.evaluation.metrics import compute_scores

KEYS = [f"{name}_ci_{end}" for name in HEADLINE_METRICS for end in ("low", "high")]


def realistic_split(seed=0, per_class=60):
    rng = np.random.default_rng(seed)
    labels = np.repeat([1, 0], per_class)
    probs = np.clip(rng.normal(0.35 + 0.3 * labels, 0.2), 0.0, 1.0)
    return labels, probs


def test_every_headline_metric_gets_a_low_and_a_high_bound():
    labels, probs = realistic_split()
    intervals = bootstrap_intervals(labels, probs, 0.5, resamples=200, seed=0)
    assert list(intervals) == KEYS
    assert all(isinstance(value, float) and math.isfinite(value) for value in intervals.values())


def test_a_detector_that_is_always_right_gets_degenerate_perfect_intervals():
    labels = [1, 1, 1, 0, 0, 0, 0]
    probs = [0.9, 0.8, 0.6, 0.4, 0.3, 0.1, 0.1]
    intervals = bootstrap_intervals(labels, probs, 0.5, resamples=300, seed=3)
    # Stratified resamples of a perfectly separated split are all perfectly separated.
    assert intervals == {"accuracy_ci_low": 1.0, "accuracy_ci_high": 1.0, "roc_auc_ci_low": 1.0,
                         "roc_auc_ci_high": 1.0, "eer_ci_low": 0.0, "eer_ci_high": 0.0,
                         "f1_ci_low": 1.0, "f1_ci_high": 1.0, "average_precision_ci_low": 1.0,
                         "average_precision_ci_high": 1.0}


def test_accuracy_interval_matches_the_enumerated_bootstrap_distribution():
    # Reals 0.1 and 0.3 are always right; of the fakes 0.9 is right and 0.2 wrong. A resample draws
    # k ~ Binomial(2, 1/2) copies of the right fake, so accuracy is (2 + k) / 4:
    # 0.5 with probability 1/4, 0.75 with 1/2 and 1.0 with 1/4.
    labels, probs = [1, 1, 0, 0], [0.9, 0.2, 0.1, 0.3]
    wide = bootstrap_intervals(labels, probs, 0.5, resamples=4000, seed=11, metrics=("accuracy",))
    assert wide == {"accuracy_ci_low": 0.5, "accuracy_ci_high": 1.0}
    # The 30th and 70th percentiles both fall in the middle value's half of the distribution.
    narrow = bootstrap_intervals(labels, probs, 0.5, resamples=4000, seed=11, confidence=0.4,
                                 metrics=("accuracy",))
    assert narrow == {"accuracy_ci_low": 0.75, "accuracy_ci_high": 0.75}


def test_intervals_are_percentiles_of_explicitly_drawn_stratified_resamples():
    labels = np.array([1, 1, 1, 0, 0, 0])
    probs = np.array([0.9, 0.5, 0.3, 0.5, 0.2, 0.6])
    resamples, seed = 20, 7
    rng = np.random.default_rng(seed)
    fake_draws = rng.integers(0, 3, size=(resamples, 3))
    real_draws = rng.integers(0, 3, size=(resamples, 3))
    expected = {name: [] for name in HEADLINE_METRICS}
    for fakes, reals in zip(fake_draws, real_draws, strict=True):
        rows = np.concatenate([fakes, 3 + reals])
        scores = compute_scores(labels[rows], probs[rows], 0.5, n_bins=10)
        for name in HEADLINE_METRICS:
            expected[name].append(scores[name])

    intervals = bootstrap_intervals(labels, probs, 0.5, resamples=resamples, seed=seed)
    for name in HEADLINE_METRICS:
        low, high = np.percentile(expected[name], [2.5, 97.5])
        assert intervals[f"{name}_ci_low"] == pytest.approx(low, abs=1e-12), name
        assert intervals[f"{name}_ci_high"] == pytest.approx(high, abs=1e-12), name


@pytest.mark.parametrize("seed", range(12))
def test_each_resample_is_scored_exactly_as_compute_scores_would(seed):
    # With one resample the interval collapses onto that resample's score, so any difference
    # from compute_scores (ties, EER interpolation, AP steps) would show here.
    labels = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0])
    probs = np.array([0.8, 0.6, 0.6, 0.4, 0.2, 0.6, 0.4, 0.3, 0.1])
    rows = stratified_resamples(labels, 1, np.random.default_rng(seed))[0]
    expected = compute_scores(labels[rows], probs[rows], 0.5, n_bins=10)
    intervals = bootstrap_intervals(labels, probs, 0.5, resamples=1, seed=seed)
    for name in HEADLINE_METRICS:
        assert intervals[f"{name}_ci_low"] == pytest.approx(expected[name], abs=1e-12), name
        assert intervals[f"{name}_ci_high"] == intervals[f"{name}_ci_low"]


def test_intervals_contain_the_point_estimate_on_a_realistic_split():
    labels, probs = realistic_split(seed=1)
    point = compute_scores(labels, probs, 0.5, n_bins=10)
    intervals = bootstrap_intervals(labels, probs, 0.5, resamples=1000, seed=2)
    for name in HEADLINE_METRICS:
        low, high = intervals[f"{name}_ci_low"], intervals[f"{name}_ci_high"]
        assert low < point[name] < high, name
        assert high - low < 0.4, name


def test_the_same_seed_gives_the_same_intervals_and_another_seed_other_ones():
    labels, probs = realistic_split()
    first = bootstrap_intervals(labels, probs, 0.5, resamples=200, seed=5)
    assert bootstrap_intervals(labels, probs, 0.5, resamples=200, seed=5) == first
    other = bootstrap_intervals(labels, probs, 0.5, resamples=200, seed=6)
    assert other != first


def test_stratified_resamples_keep_both_classes_and_their_counts():
    labels = np.array([1, 0, 0, 0, 0, 0])
    rows = stratified_resamples(labels, 500, np.random.default_rng(0))
    assert rows.shape == (500, 6)
    assert (labels[rows].sum(axis=1) == 1).all()


def test_a_split_with_a_single_fake_still_gets_intervals():
    # Unstratified, (5/6)^6 = a third of the resamples would hold no fake and have no ROC curve.
    labels = [1, 0, 0, 0, 0, 0]
    probs = [0.7, 0.2, 0.6, 0.1, 0.8, 0.3]
    intervals = bootstrap_intervals(labels, probs, 0.5, resamples=200, seed=0)
    assert list(intervals) == KEYS
    assert intervals["roc_auc_ci_low"] < intervals["roc_auc_ci_high"]


def test_zero_resamples_switches_intervals_off():
    labels, probs = realistic_split()
    assert bootstrap_intervals(labels, probs, 0.5, resamples=0, seed=0) == {}


def test_percentile_interval_cuts_equal_tails():
    assert percentile_interval(np.arange(101), 0.9) == pytest.approx((5.0, 95.0))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"resamples": -1}, "resamples must be a whole number >= 0"),
    ({"confidence": 1.0}, "confidence must lie strictly between 0 and 1"),
    ({"metrics": ("accuracy", "auc")}, "no bootstrap for metric(s) ['auc']"),
])
def test_bad_settings_are_refused_with_the_setting_named(kwargs, message):
    labels, probs = realistic_split()
    settings = {"resamples": 10, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        bootstrap_intervals(labels, probs, 0.5, **settings)


def test_one_class_input_is_refused():
    with pytest.raises(ValueError, match="both classes"):
        bootstrap_intervals([1, 1, 1], [0.2, 0.5, 0.9], 0.5, resamples=10, seed=0)
