"""Scores of a binary P(fake) detector, threshold choice and the data behind the evaluation plots.

Pure NumPy and scikit-learn, no TensorFlow. Labels follow labels.py (fake = 1 = positive) and an
image is called fake when its score is at or above the threshold, as in scikit-learn's roc_curve.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from deepfake_detector.contracts.labels import FAKE, REAL

ThresholdStrategy = float | Literal["eer", "youden"]
THRESHOLD_STRATEGIES = ("eer", "youden")

# Ties between candidate thresholds are decided on rounded-off float noise (0.8 - 0.2 > 0.6) unless
# values this close count as equal.
TIE_TOLERANCE = 1e-9
# Probabilities are clipped to [EPSILON, 1 - EPSILON] before taking logits (|logit| <= 16.1), about
# where a float32 sigmoid saturates: a score of exactly 0 or 1 says "at least this far out".
EPSILON = 1e-7
# Top-label calibration compares confidence with accuracy; the predicted class is the more likely one.
TOP_LABEL_CUT = 0.5
LOW_FPR = 0.01      # tpr_at_fpr_1pct


def check_binary_inputs(y_true: Sequence[int], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Labels as an int array of 0/1 and scores as a finite float64 array of the same length.

    Raises ValueError when the two differ in length, are empty, labels are not 0/1, a score is
    not finite, or only one class is present (no ROC curve exists then).
    """
    labels = np.asarray(y_true).ravel()
    values = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != values.shape:
        raise ValueError(f"{labels.size} labels but {values.size} scores")
    if labels.size == 0:
        raise ValueError("no labels to score")
    if not np.isin(labels, (REAL, FAKE)).all():
        raise ValueError(f"labels must be {REAL} (real) or {FAKE} (fake), got {sorted(set(labels.tolist()))}")
    if not np.isfinite(values).all():
        raise ValueError("scores must be finite numbers (got NaN or infinity)")
    if np.unique(labels).size < 2:
        raise ValueError(f"scores need both classes, but every label is {int(labels[0])}")
    return labels.astype(np.int64), values


def check_probabilities(probs: np.ndarray) -> None:
    if (probs < 0).any() or (probs > 1).any():
        raise ValueError(f"probabilities must lie in [0, 1], got {probs.min():g} to {probs.max():g}")


def clipped_logits(probs: np.ndarray) -> np.ndarray:
    """logit(p) with p clipped to [EPSILON, 1 - EPSILON], so 0 and 1 map to finite values."""
    clipped = np.clip(np.asarray(probs, dtype=np.float64), EPSILON, 1.0 - EPSILON)
    return np.log(clipped) - np.log1p(-clipped)


def threshold_between(lower: float, upper: float) -> float:
    """A threshold t with lower < t <= upper and 0 < t < 1: the middle of the interval in logit space.

    Every threshold in (lower, upper] makes the same decisions on the scores it was chosen from; the
    middle keeps the widest margin on both sides for new images. The middle is taken in logit space
    because temperature scaling is linear there: the calibrated threshold is then the middle of the
    calibrated interval too, and raw and calibrated rules stay one point. Where clipping makes the
    two ends one logit, the arithmetic middle is used. Raises ValueError if the interval holds no
    such float (only when its ends are adjacent floats).
    """
    middle = float(1.0 / (1.0 + np.exp(-clipped_logits(np.array([lower, upper])).mean())))
    for candidate in (middle, (lower + upper) / 2.0):
        if lower < candidate <= upper and 0.0 < candidate < 1.0:
            return candidate
    raise ValueError(f"no threshold strictly between 0 and 1 lies in ({lower!r}, {upper!r}]")


def _finite_roc(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ROC operating point that a real threshold reaches (the point at +inf is left out),
    from the highest threshold to the lowest."""
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    finite = np.isfinite(thresholds)
    return fpr[finite], tpr[finite], thresholds[finite]


def _best_threshold(thresholds: np.ndarray, merit: np.ndarray) -> float:
    """The middle threshold of the best operating point by `merit` (higher is better); thresholds and
    merit are per operating point of _finite_roc, from the highest threshold down.

    Ties between operating points go to the higher threshold (fewer false alarms). The operating point
    at each distinct score s is reached by every threshold from just above the next lower score up to
    s; the lowest score's point reaches down to 0, and cannot be reached by a threshold above 0 when
    that score is 0 itself. When nothing else can be reached (every score is 0), nothing is called fake.
    """
    lowers = np.append(thresholds[1:], 0.0)
    reachable = thresholds > 0.0
    if not reachable.any():
        return threshold_between(float(thresholds[0]), 1.0)
    best_merit = merit[reachable].max()
    best = int(np.argmax(reachable & (merit >= best_merit - TIE_TOLERANCE)))
    return threshold_between(float(lowers[best]), float(thresholds[best]))


def equal_error_rate(y_true: Sequence[int], scores: Sequence[float]) -> tuple[float, float]:
    """The error rate where the false positive rate equals the false negative rate, and a
    threshold at the operating point that comes closest to it.

    The rate is read where the ROC curve, joined point to point by straight lines, crosses
    FPR = 1 - TPR, so it is exact even when no single threshold balances the two errors. The
    threshold reaches the operating point with the smallest |FPR - FNR| (ties: the higher one,
    fewer false alarms) and sits in the middle of the thresholds that reach it (threshold_between):
    on a perfectly separated split, halfway between the highest real and the lowest fake in logit
    space, never on either. A constant predictor gives rate 0.5.
    """
    labels, values = check_binary_inputs(y_true, scores)
    fpr, tpr, _ = roc_curve(labels, values, drop_intermediate=False)
    fnr = 1.0 - tpr
    # FPR - FNR rises from -1 at (0, 0) to +1 at (1, 1), never falling, so it crosses 0 once.
    gap = fpr - fnr
    after = int(np.argmax(gap >= 0))
    if gap[after] == 0:
        rate = float(fpr[after])
    else:
        before = after - 1
        fraction = -gap[before] / (gap[after] - gap[before])
        rate = float(fpr[before] + fraction * (fpr[after] - fpr[before]))

    finite_fpr, finite_tpr, thresholds = _finite_roc(labels, values)
    return rate, _best_threshold(thresholds, -np.abs(finite_fpr - (1.0 - finite_tpr)))


def youden_threshold(y_true: Sequence[int], scores: Sequence[float]) -> float:
    """A threshold at the operating point that maximizes Youden's J = TPR - FPR (ties: the higher
    one), in the middle of the thresholds that reach it, as for equal_error_rate."""
    labels, values = check_binary_inputs(y_true, scores)
    fpr, tpr, thresholds = _finite_roc(labels, values)
    return _best_threshold(thresholds, tpr - fpr)


def choose_threshold(y_true: Sequence[int], scores: Sequence[float], strategy: ThresholdStrategy) -> float:
    """The decision threshold for strategy: a number is used as is; "eer" and "youden" are
    worked out from these labels and scores, which should be the validation split's."""
    if isinstance(strategy, str):
        if strategy == "eer":
            return equal_error_rate(y_true, scores)[1]
        if strategy == "youden":
            return youden_threshold(y_true, scores)
        raise ValueError(f"unknown threshold strategy {strategy!r}; expected a number, "
                         f"{' or '.join(repr(s) for s in THRESHOLD_STRATEGIES)}")
    threshold = float(strategy)
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {strategy!r}")
    return threshold


def tpr_at_fpr(y_true: Sequence[int], scores: Sequence[float], max_fpr: float) -> float:
    """The highest true positive rate of any threshold whose false positive rate is at most
    max_fpr (0.0 if only the reject-everything point qualifies)."""
    labels, values = check_binary_inputs(y_true, scores)
    fpr, tpr, _ = roc_curve(labels, values, drop_intermediate=False)
    return float(tpr[fpr <= max_fpr].max())


def low_fpr_scores(y_true: Sequence[int], scores: Sequence[float], unit: str = "images") -> dict[str, Any]:
    """TPR at 1 % FPR with its resolution: n real images resolve false positive rates in steps of 1/n,
    so with fewer than 100 the "1 %" would really be 0 %. Then tpr_at_fpr_1pct is None and
    tpr_at_fpr_1pct_note says why, counting real `unit` (None when there is a number)."""
    labels, values = check_binary_inputs(y_true, scores)
    n_real = int(np.count_nonzero(labels == REAL))
    resolution = 1.0 / n_real
    if resolution > LOW_FPR + TIE_TOLERANCE:
        note = (f"not resolvable: {n_real} real {unit} resolve false positive rates in steps of "
                f"1/{n_real} = {resolution:.3f}; 1 % needs at least {math.ceil(1 / LOW_FPR)}")
        return {"tpr_at_fpr_1pct": None, "tpr_at_fpr_1pct_note": note, "fpr_resolution": resolution}
    return {"tpr_at_fpr_1pct": tpr_at_fpr(labels, values, LOW_FPR), "tpr_at_fpr_1pct_note": None,
            "fpr_resolution": resolution}


def _equal_width_bins(values: np.ndarray, n_bins: int) -> np.ndarray:
    """The bin of each value in [0, 1] among n_bins bins [i/n, (i+1)/n), the last one closed at 1.0."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    return np.minimum(np.floor(values * n_bins).astype(np.int64), n_bins - 1)


def _binned_calibration_gap(predicted: np.ndarray, observed: np.ndarray, n_bins: int) -> float:
    """Count-weighted mean over equal-width bins of `predicted` of |mean observed - mean predicted|."""
    index = _equal_width_bins(predicted, n_bins)
    counts = np.bincount(index, minlength=n_bins)
    predicted_sums = np.bincount(index, weights=predicted, minlength=n_bins)
    observed_sums = np.bincount(index, weights=observed.astype(np.float64), minlength=n_bins)
    return float(np.abs(observed_sums - predicted_sums).sum() / counts.sum())


def calibration_bins(y_true: Sequence[int], probs: Sequence[float], n_bins: int) -> list[dict[str, float]]:
    """Reliability-diagram data: P(fake) cut into n_bins equal-width bins [i/n, (i+1)/n) (the last
    one closed at 1.0); for each non-empty bin its edges, mean predicted P(fake), fraction of
    images that are fake, and count. Empty bins are left out, having no mean."""
    labels, values = check_binary_inputs(y_true, probs)
    check_probabilities(values)
    index = _equal_width_bins(values, n_bins)
    bins = []
    for i in range(n_bins):
        members = index == i
        count = int(members.sum())
        if count:
            bins.append({
                "bin_lower": i / n_bins,
                "bin_upper": (i + 1) / n_bins,
                "mean_predicted": float(values[members].mean()),
                "fraction_positive": float(labels[members].mean()),
                "count": count,
            })
    return bins


def positive_class_ece(y_true: Sequence[int], probs: Sequence[float], n_bins: int) -> float:
    """Expected calibration error of P(fake) itself: count-weighted mean of |fraction fake - mean
    P(fake)| over equal-width bins of P(fake). 0 for a perfectly calibrated detector, at most 1."""
    labels, values = check_binary_inputs(y_true, probs)
    check_probabilities(values)
    return _binned_calibration_gap(values, labels, n_bins)


def top_label_ece(y_true: Sequence[int], probs: Sequence[float], n_bins: int) -> float:
    """Top-label expected calibration error (Guo et al. 2017), the ECE most papers report: each image's
    predicted class is the more likely one (fake at P(fake) >= 0.5), its confidence that class's
    probability (max(p, 1 - p), in [0.5, 1]); ECE is the count-weighted mean of |accuracy - mean
    confidence| over n_bins equal-width bins of [0, 1] (in the binary case only the upper half fills)."""
    labels, values = check_binary_inputs(y_true, probs)
    check_probabilities(values)
    predicted_fake = values >= TOP_LABEL_CUT
    confidence = np.where(predicted_fake, values, 1.0 - values)
    correct = predicted_fake == (labels == FAKE)
    return _binned_calibration_gap(confidence, correct, n_bins)


def predict_labels(probs: Sequence[float], threshold: float) -> np.ndarray:
    """1 (fake) where P(fake) >= threshold, else 0 (real)."""
    return (np.asarray(probs, dtype=np.float64) >= threshold).astype(np.int64)


def compute_scores(y_true: Sequence[int], probs: Sequence[float], threshold: float,
                   n_bins: int, unit: str = "images") -> dict[str, Any]:
    """Every number the evaluate stage reports for one split: plain floats, never NaN, except
    tpr_at_fpr_1pct, which is None (and tpr_at_fpr_1pct_note says why) when the split has too few
    real images to resolve a 1 % false positive rate.

    Threshold metrics use P(fake) >= threshold; ranking metrics (roc_auc, average_precision,
    eer, tpr_at_fpr_1pct) use the raw scores. Precision is 0 when nothing is called fake. unit names what
    was scored ("videos" for video-level scores) in tpr_at_fpr_1pct_note.
    """
    labels, values = check_binary_inputs(y_true, probs)
    check_probabilities(values)
    predicted = predict_labels(values, threshold)
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(labels, predicted)),
        "precision": float(precision_score(labels, predicted, pos_label=FAKE, zero_division=0)),
        "recall": float(recall_score(labels, predicted, pos_label=FAKE, zero_division=0)),
        "f1": float(f1_score(labels, predicted, pos_label=FAKE, zero_division=0)),
        "roc_auc": float(roc_auc_score(labels, values)),
        "average_precision": float(average_precision_score(labels, values, pos_label=FAKE)),
        "eer": equal_error_rate(labels, values)[0],
        **low_fpr_scores(labels, values, unit),
        "log_loss": float(log_loss(labels, values, labels=[REAL, FAKE])),
        "ece_positive_class": positive_class_ece(labels, values, n_bins),
        "ece_top_label": top_label_ece(labels, values, n_bins),
        "threshold": float(threshold),
    }


def _number_or_none(value: float) -> float | None:
    # The reject-everything end of a curve has threshold +inf, which strict JSON cannot hold.
    return float(value) if math.isfinite(value) else None


def roc_points(y_true: Sequence[int], scores: Sequence[float]) -> list[dict[str, Any]]:
    """ROC curve points {fpr, tpr, threshold}, corners included; collinear points are dropped
    and the (0, 0) point's threshold is None (nothing scores above +inf)."""
    labels, values = check_binary_inputs(y_true, scores)
    fpr, tpr, thresholds = roc_curve(labels, values, drop_intermediate=True)
    return [{"fpr": float(f), "tpr": float(t), "threshold": _number_or_none(h)}
            for f, t, h in zip(fpr, tpr, thresholds, strict=True)]


def precision_recall_points(y_true: Sequence[int], scores: Sequence[float]) -> list[dict[str, Any]]:
    """Precision-recall curve points {precision, recall, threshold}, from the lowest threshold up;
    the final (recall 0, precision 1) point has no threshold and gets None."""
    labels, values = check_binary_inputs(y_true, scores)
    precision, recall, thresholds = precision_recall_curve(labels, values, pos_label=FAKE,
                                                           drop_intermediate=True)
    padded = [*thresholds.tolist(), math.inf]
    return [{"precision": float(p), "recall": float(r), "threshold": _number_or_none(h)}
            for p, r, h in zip(precision, recall, padded, strict=True)]
