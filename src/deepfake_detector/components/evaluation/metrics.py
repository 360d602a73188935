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


def _finite_roc(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ROC operating point that a real threshold reaches (the point at +inf is left out),
    from the highest threshold to the lowest."""
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    finite = np.isfinite(thresholds)
    return fpr[finite], tpr[finite], thresholds[finite]


def equal_error_rate(y_true: Sequence[int], scores: Sequence[float]) -> tuple[float, float]:
    """The error rate where the false positive rate equals the false negative rate, and the
    threshold that comes closest to it.

    The rate is read where the ROC curve, joined point to point by straight lines, crosses
    FPR = 1 - TPR, so it is exact even when no single threshold balances the two errors. The
    threshold is the score whose operating point has the smallest |FPR - FNR|; ties go to the
    higher threshold (fewer false alarms). A constant predictor gives (0.5, its constant).
    """
    labels, values = check_binary_inputs(y_true, scores)
    fpr, tpr, thresholds = roc_curve(labels, values, drop_intermediate=False)
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

    finite = np.isfinite(thresholds)
    distance = np.abs(gap[finite])
    best = int(np.argmax(distance <= distance.min() + TIE_TOLERANCE))
    return rate, float(thresholds[finite][best])


def youden_threshold(y_true: Sequence[int], scores: Sequence[float]) -> float:
    """The score that maximizes Youden's J = TPR - FPR; ties go to the higher threshold."""
    labels, values = check_binary_inputs(y_true, scores)
    fpr, tpr, thresholds = _finite_roc(labels, values)
    youden = tpr - fpr
    best = int(np.argmax(youden >= youden.max() - TIE_TOLERANCE))
    return float(thresholds[best])


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


def calibration_bins(y_true: Sequence[int], probs: Sequence[float], n_bins: int) -> list[dict[str, float]]:
    """Reliability-diagram data: P(fake) cut into n_bins equal-width bins [i/n, (i+1)/n) (the last
    one closed at 1.0); for each non-empty bin its edges, mean predicted P(fake), fraction of
    images that are fake, and count. Empty bins are left out, having no mean."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    labels, values = check_binary_inputs(y_true, probs)
    check_probabilities(values)
    index = np.minimum(np.floor(values * n_bins).astype(np.int64), n_bins - 1)
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


def expected_calibration_error(y_true: Sequence[int], probs: Sequence[float], n_bins: int) -> float:
    """Count-weighted mean of |fraction fake - mean P(fake)| over equal-width bins of P(fake):
    0 for a perfectly calibrated detector, at most 1."""
    bins = calibration_bins(y_true, probs, n_bins)
    total = sum(b["count"] for b in bins)
    return float(sum(b["count"] * abs(b["fraction_positive"] - b["mean_predicted"]) for b in bins) / total)


def predict_labels(probs: Sequence[float], threshold: float) -> np.ndarray:
    """1 (fake) where P(fake) >= threshold, else 0 (real)."""
    return (np.asarray(probs, dtype=np.float64) >= threshold).astype(np.int64)


def compute_scores(y_true: Sequence[int], probs: Sequence[float], threshold: float,
                   n_bins: int) -> dict[str, float]:
    """Every number the evaluate stage reports for one split, all plain floats and never NaN.

    Threshold metrics use P(fake) >= threshold; ranking metrics (roc_auc, average_precision,
    eer, tpr_at_fpr_1pct) use the raw scores. Precision is 0 when nothing is called fake.
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
        "tpr_at_fpr_1pct": tpr_at_fpr(labels, values, 0.01),
        "log_loss": float(log_loss(labels, values, labels=[REAL, FAKE])),
        "ece": expected_calibration_error(labels, values, n_bins),
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
