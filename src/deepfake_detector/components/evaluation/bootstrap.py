"""Percentile-bootstrap confidence intervals for the headline test metrics.

A test split of a hundred images gives an accuracy that could easily move by several points on
another draw of images; the interval says how far. Images are resampled one by one; frames sampled
from videos are resampled by video (cluster_bootstrap_intervals), since frames of one clip are not
independent draws. Pure NumPy plus metrics.py, no TensorFlow.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from deepfake_detector.components.evaluation.metrics import check_binary_inputs, check_probabilities
from deepfake_detector.contracts.labels import FAKE, REAL

logger = logging.getLogger(__name__)

# Same names, and the same definitions, as the keys compute_scores writes.
HEADLINE_METRICS = ("accuracy", "roc_auc", "eer", "f1", "average_precision")
THRESHOLD_METRICS = ("accuracy", "f1")
RANKING_METRICS = ("roc_auc", "eer", "average_precision")
# Resamples x images per batch of ranking metrics: bounds memory (a few arrays of this many
# numbers) on large test splits.
CELLS_PER_BATCH = 4_000_000


def percentile_interval(values: Sequence[float], confidence: float) -> tuple[float, float]:
    """The central confidence interval of values: the (1 - c)/2 and (1 + c)/2 percentiles, with
    NumPy's default linear interpolation between order statistics."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    samples = np.asarray(values, dtype=np.float64).ravel()
    if samples.size == 0:
        raise ValueError("no values to take a percentile interval of")
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return float(low), float(high)


def stratified_resamples(labels: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Index arrays of shape (resamples, len(labels)): each row draws, with replacement, as many
    fakes among the fakes and as many reals among the reals as labels holds, fakes first.

    Every row keeps both classes and the class counts, so every metric stays defined. The draws
    are exactly rng.integers(0, n_fake, (resamples, n_fake)) then the same for the reals.
    """
    fakes = np.flatnonzero(labels == FAKE)
    reals = np.flatnonzero(labels == REAL)
    fake_draws = rng.integers(0, fakes.size, size=(resamples, fakes.size))
    real_draws = rng.integers(0, reals.size, size=(resamples, reals.size))
    return np.concatenate([fakes[fake_draws], reals[real_draws]], axis=1)


def _threshold_metric_samples(labels: np.ndarray, correct: np.ndarray, indices: np.ndarray,
                              names: Sequence[str]) -> dict[str, np.ndarray]:
    """Accuracy and F1 of every resample at once, from which drawn images were called right."""
    is_correct = correct[indices]
    is_fake = labels[indices] == FAKE
    true_positives = (is_correct & is_fake).sum(axis=1)
    false_negatives = (~is_correct & is_fake).sum(axis=1)
    false_positives = (~is_correct & ~is_fake).sum(axis=1)
    samples = {}
    if "accuracy" in names:
        samples["accuracy"] = is_correct.mean(axis=1)
    if "f1" in names:
        denominator = 2 * true_positives + false_positives + false_negatives
        # zero_division=0, as in compute_scores (cannot happen while every resample holds fakes).
        samples["f1"] = np.divide(2 * true_positives, denominator, out=np.zeros(len(indices)),
                                  where=denominator > 0)
    return samples


def _ranking_metric_samples(labels: np.ndarray, values: np.ndarray, indices: np.ndarray,
                            names: Sequence[str]) -> dict[str, np.ndarray]:
    """ROC AUC, EER and average precision of every resample at once.

    Calling scikit-learn per resample takes seconds per metric; instead each resample is a
    vector of how often it drew each image, and its ROC points are cumulative counts at every
    distinct score of the full split, from the highest down. A score the resample did not draw
    repeats the previous point, which adds nothing to any of the three, so the numbers equal
    roc_auc_score, equal_error_rate and average_precision_score on the resample (to rounding;
    the tests check this).
    """
    resamples, size = indices.shape
    rows = np.arange(resamples)[:, None] * size
    counts = np.bincount((indices + rows).ravel(), minlength=resamples * size).reshape(resamples, size)
    # Every resample keeps the split's class counts, so the rates share one denominator.
    return _ranking_samples_from_counts(labels, values, counts, names, np.count_nonzero(labels == FAKE),
                                        np.count_nonzero(labels == REAL))


def _ranking_samples_from_counts(labels: np.ndarray, values: np.ndarray, counts: np.ndarray, names: Sequence[str],
                                 fakes_drawn: int | np.ndarray, reals_drawn: int | np.ndarray
                                 ) -> dict[str, np.ndarray]:
    """_ranking_metric_samples from counts (resamples, items): how often each resample drew each item, of which
    fakes_drawn are fakes and reals_drawn reals (one number for all resamples, or a column of one per resample)."""
    resamples = counts.shape[0]
    order = np.argsort(-values, kind="stable")
    ordered = values[order]
    last_of_each_score = np.flatnonzero(np.append(ordered[1:] != ordered[:-1], True))
    is_fake = labels[order] == FAKE
    drawn = counts[:, order]
    true_positives = np.cumsum(drawn * is_fake, axis=1)[:, last_of_each_score]
    false_positives = np.cumsum(drawn * ~is_fake, axis=1)[:, last_of_each_score]
    start = np.zeros((resamples, 1))
    tpr = np.concatenate([start, true_positives / fakes_drawn], axis=1)
    fpr = np.concatenate([start, false_positives / reals_drawn], axis=1)

    samples = {}
    if "roc_auc" in names:
        samples["roc_auc"] = np.sum(np.diff(fpr, axis=1) * (tpr[:, 1:] + tpr[:, :-1]) / 2, axis=1)
    if "eer" in names:
        # As equal_error_rate: where the ROC polyline crosses FPR = FNR (gap rises from -1 to +1).
        gap = fpr - (1.0 - tpr)
        after = np.argmax(gap >= 0, axis=1)[:, None]
        before = after - 1
        gap_after, gap_before = np.take_along_axis(gap, after, 1), np.take_along_axis(gap, before, 1)
        fpr_after, fpr_before = np.take_along_axis(fpr, after, 1), np.take_along_axis(fpr, before, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing = fpr_before + (-gap_before / (gap_after - gap_before)) * (fpr_after - fpr_before)
        samples["eer"] = np.where(gap_after == 0, fpr_after, crossing)[:, 0]
    if "average_precision" in names:
        called_fake = true_positives + false_positives
        precision = np.divide(true_positives, called_fake, out=np.zeros(called_fake.shape), where=called_fake > 0)
        samples["average_precision"] = np.maximum(0.0, np.sum(np.diff(tpr, axis=1) * precision, axis=1))
    return samples


def bootstrap_intervals(labels: Sequence[int], probs: Sequence[float], threshold: float, *, resamples: int,
                        seed: int, confidence: float = 0.95, metrics: Sequence[str] = HEADLINE_METRICS,
                        videos: Sequence[str] | None = None) -> dict[str, float]:
    """{"<metric>_ci_low", "<metric>_ci_high"} for each metric: the percentile bootstrap interval
    over `resamples` class-stratified resamples of the images, seeded with default_rng(seed).

    The threshold stays fixed (it was chosen on validation, so re-choosing it per resample would
    measure a different procedure). Same inputs and seed give the same numbers; resamples=0
    gives {} (intervals switched off). With videos (each image's video, "" for a still image), whole
    videos are resampled instead (cluster_bootstrap_intervals over frame_clusters).
    """
    if videos is not None:
        return cluster_bootstrap_intervals(labels, probs, frame_clusters(np.asarray(videos, dtype=object)),
                                           threshold, resamples=resamples, seed=seed, confidence=confidence,
                                           metrics=metrics)
    _check_settings(resamples, confidence, threshold, metrics)
    if resamples == 0:
        return {}
    label_array, values = check_binary_inputs(labels, probs)
    check_probabilities(values)
    samples = bootstrap_samples(label_array, values, threshold, resamples=int(resamples),
                                rng=np.random.default_rng(seed), metrics=metrics)
    intervals = _intervals(samples, metrics, confidence)
    logger.info("Bootstrap %.0f%% intervals from %d stratified resamples of %d images",
                100 * confidence, resamples, label_array.size)
    return intervals


def mean_intervals(sets: Sequence[tuple[Sequence[int], Sequence[float]]], threshold: float, *, resamples: int,
                   seed: int, confidence: float = 0.95,
                   metrics: Sequence[str] = HEADLINE_METRICS) -> dict[str, float]:
    """{"<metric>_ci_low", "<metric>_ci_high"} for the mean of each metric over several sets of
    (labels, probs), each holding both classes: a joint percentile bootstrap in which every resample
    redraws each set independently (class-stratified, as bootstrap_intervals does) and averages the
    per-set values, so the interval reflects every set's sampling noise at once.

    Seeded with default_rng(seed), the sets drawn in the order given; resamples=0 or no sets gives {}.
    """
    _check_settings(resamples, confidence, threshold, metrics)
    if resamples == 0 or not sets:
        return {}
    rng = np.random.default_rng(seed)
    per_set = []
    for labels, probs in sets:
        label_array, values = check_binary_inputs(labels, probs)
        check_probabilities(values)
        per_set.append(bootstrap_samples(label_array, values, threshold, resamples=int(resamples), rng=rng,
                                         metrics=metrics))
    means = {name: np.mean([samples[name] for samples in per_set], axis=0) for name in metrics}
    logger.info("Bootstrap %.0f%% intervals of the mean over %d sets from %d joint resamples",
                100 * confidence, len(sets), resamples)
    return _intervals(means, metrics, confidence)


def frame_clusters(videos: np.ndarray) -> np.ndarray:
    """The unit each row is resampled with: frames of one video share a number; a still image has its own."""
    videos = np.asarray(videos, dtype=object)
    _, clusters = np.unique(videos.astype(str), return_inverse=True)
    stills = videos == ""
    clusters = clusters.astype(np.int64)
    clusters[stills] = clusters.max(initial=0) + 1 + np.arange(int(stills.sum()))
    return clusters


def cluster_bootstrap_intervals(labels: Sequence[int], probs: Sequence[float], clusters: Sequence[Any],
                                threshold: float, *, resamples: int, seed: int, confidence: float = 0.95,
                                metrics: Sequence[str] = HEADLINE_METRICS) -> dict[str, float]:
    """bootstrap_intervals with whole clusters as the unit: each resample draws, with replacement, as many fake
    clusters among the fake ones and real clusters among the real ones as there are (stratified_resamples on the
    clusters, seeded with default_rng(seed)), and takes every item of each cluster drawn.

    For frames sampled from videos (a cluster is a video): frames of one clip look alike, so resampling them one
    by one would pretend to far more independent evidence than there is, and give intervals too narrow. Items
    with distinct cluster keys are independent, so a still image is a cluster of its own. Every item of a cluster
    must share its label (ValueError otherwise); the threshold stays fixed, as in bootstrap_intervals.
    """
    _check_settings(resamples, confidence, threshold, metrics)
    if resamples == 0:
        return {}
    label_array, values = check_binary_inputs(labels, probs)
    check_probabilities(values)
    keys = np.asarray(clusters).ravel()
    if keys.size != label_array.size:
        raise ValueError(f"{keys.size} cluster keys for {label_array.size} labels")
    _, cluster_of_item = np.unique(keys, return_inverse=True)
    cluster_labels = np.zeros(int(cluster_of_item.max()) + 1, dtype=np.int64)
    cluster_labels[cluster_of_item] = label_array
    if (cluster_labels[cluster_of_item] != label_array).any():
        mixed = sorted({str(key) for key in keys[cluster_labels[cluster_of_item] != label_array]})
        raise ValueError(f"every item of a cluster must share its label; mixed in {mixed[:5]}")
    draws = stratified_resamples(cluster_labels, int(resamples), np.random.default_rng(seed))
    correct = (values >= threshold).astype(np.int64) == label_array
    batch = max(1, CELLS_PER_BATCH // label_array.size)
    parts = [_cluster_samples(label_array, values, correct, cluster_of_item, draws[start:start + batch], metrics)
             for start in range(0, len(draws), batch)]
    samples = {name: np.concatenate([part[name] for part in parts]) for name in metrics}
    logger.info("Bootstrap %.0f%% intervals from %d stratified resamples of %d clusters (%d items)",
                100 * confidence, resamples, cluster_labels.size, label_array.size)
    return _intervals(samples, metrics, confidence)


def _cluster_samples(labels: np.ndarray, values: np.ndarray, correct: np.ndarray, cluster_of_item: np.ndarray,
                     draws: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Each metric on each resample of clusters in draws (resamples, clusters): an item is drawn as often as its
    cluster, so a resample holds a varying number of items of each class."""
    resamples, size = draws.shape
    rows = np.arange(resamples)[:, None] * size
    cluster_counts = np.bincount((draws + rows).ravel(), minlength=resamples * size).reshape(resamples, size)
    counts = cluster_counts[:, cluster_of_item]
    is_fake = labels == FAKE
    true_positives = (counts * (correct & is_fake)).sum(axis=1)
    false_negatives = (counts * (~correct & is_fake)).sum(axis=1)
    false_positives = (counts * (~correct & ~is_fake)).sum(axis=1)
    samples = {}
    if "accuracy" in names:
        samples["accuracy"] = (counts * correct).sum(axis=1) / counts.sum(axis=1)
    if "f1" in names:
        denominator = 2 * true_positives + false_positives + false_negatives
        samples["f1"] = np.divide(2 * true_positives, denominator, out=np.zeros(resamples), where=denominator > 0)
    ranking = [name for name in names if name in RANKING_METRICS]
    if ranking:
        fakes_drawn = (counts * is_fake).sum(axis=1)[:, None]
        reals_drawn = (counts * ~is_fake).sum(axis=1)[:, None]
        samples.update(_ranking_samples_from_counts(labels, values, counts, ranking, fakes_drawn, reals_drawn))
    return samples


def bootstrap_samples(labels: np.ndarray, values: np.ndarray, threshold: float, *, resamples: int,
                      rng: np.random.Generator, metrics: Sequence[str]) -> dict[str, np.ndarray]:
    """Each metric on each of `resamples` stratified resamples (drawn from rng) of checked binary
    labels and probabilities; the threshold stays fixed."""
    indices = stratified_resamples(labels, resamples, rng)
    correct = (values >= threshold).astype(np.int64) == labels
    samples = _threshold_metric_samples(labels, correct, indices, metrics)
    ranking = [name for name in metrics if name in RANKING_METRICS]
    if ranking:
        batch = max(1, CELLS_PER_BATCH // labels.size)
        batches = [_ranking_metric_samples(labels, values, indices[start:start + batch], ranking)
                   for start in range(0, len(indices), batch)]
        samples.update({name: np.concatenate([part[name] for part in batches]) for name in ranking})
    return samples


def _check_settings(resamples: int, confidence: float, threshold: float, metrics: Sequence[str]) -> None:
    if isinstance(resamples, bool) or not isinstance(resamples, int | np.integer) or resamples < 0:
        raise ValueError(f"resamples must be a whole number >= 0, got {resamples!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    known = (*THRESHOLD_METRICS, *RANKING_METRICS)
    unknown = [name for name in metrics if name not in known]
    if unknown:
        raise ValueError(f"no bootstrap for metric(s) {unknown}; expected some of {list(known)}")


def _intervals(samples: dict[str, np.ndarray], metrics: Sequence[str], confidence: float) -> dict[str, float]:
    """The percentile interval of each metric's samples, in the order of metrics."""
    intervals = {}
    for name in metrics:
        low, high = percentile_interval(samples[name], confidence)
        intervals[f"{name}_ci_low"] = low
        intervals[f"{name}_ci_high"] = high
    return intervals
