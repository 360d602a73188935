"""The evaluation plots: data files for `dvc plots` and PNG renderings of the same curves.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot), so nothing here touches a
display or matplotlib's global state.
"""
from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score

from deepfake_detector.components.evaluation.metrics import (
    calibration_bins,
    check_binary_inputs,
    positive_class_ece,
    precision_recall_points,
    predict_labels,
    roc_points,
)
from deepfake_detector.contracts.labels import CLASS_NAMES, FAKE, REAL
from deepfake_detector.utils.files import atomic_path, write_json_atomic

logger = logging.getLogger(__name__)

ROC_DATA = "roc.json"
PRECISION_RECALL_DATA = "precision_recall.json"
CALIBRATION_DATA = "calibration.json"
CONFUSION_DATA = "confusion.csv"
ROC_IMAGE = "roc.png"
PRECISION_RECALL_IMAGE = "precision_recall.png"
CALIBRATION_IMAGE = "calibration.png"
CONFUSION_IMAGE = "confusion_matrix.png"
HISTOGRAM_IMAGE = "score_histogram.png"

DPI = 120
HISTOGRAM_BINS = 20
COLORS = {REAL: "tab:blue", FAKE: "tab:red"}
# Per set of the generalization plot: (legend label, marker style) by whether training saw its source.
SEEN_STYLES = {False: ("not seen in training", {"marker": "o", "color": "tab:red", "markerfacecolor": "tab:red"}),
               True: ("seen in training", {"marker": "s", "color": "tab:gray", "markerfacecolor": "white"})}


def write_plots(plots_dir: Path, y_true: Sequence[int], probs: Sequence[float], threshold: float,
                n_bins: int, threshold_label: str = "") -> dict[str, Path]:
    """Write every plot file for one split into plots_dir; returns file name -> path.

    threshold_label says where the threshold came from (e.g. "EER on val") in the PNG legends.
    """
    labels, values = check_binary_inputs(y_true, probs)
    plots_dir = Path(plots_dir)
    predicted = predict_labels(values, threshold)
    written = {
        ROC_DATA: write_roc_data(plots_dir / ROC_DATA, labels, values),
        PRECISION_RECALL_DATA: write_precision_recall_data(plots_dir / PRECISION_RECALL_DATA, labels, values),
        CALIBRATION_DATA: write_calibration_data(plots_dir / CALIBRATION_DATA, labels, values, n_bins),
        CONFUSION_DATA: write_confusion_data(plots_dir / CONFUSION_DATA, labels, predicted),
        ROC_IMAGE: render_roc(plots_dir / ROC_IMAGE, labels, values),
        PRECISION_RECALL_IMAGE: render_precision_recall(plots_dir / PRECISION_RECALL_IMAGE, labels, values),
        CALIBRATION_IMAGE: render_calibration(plots_dir / CALIBRATION_IMAGE, labels, values, n_bins),
        CONFUSION_IMAGE: render_confusion_matrix(plots_dir / CONFUSION_IMAGE, labels, values, threshold,
                                                 threshold_label),
        HISTOGRAM_IMAGE: render_score_histogram(plots_dir / HISTOGRAM_IMAGE, labels, values, threshold,
                                                threshold_label),
    }
    logger.info("Wrote %d plot files to %s", len(written), plots_dir)
    return written


# --- data files for dvc plots -------------------------------------------------------------------

def write_roc_data(path: Path, y_true: Sequence[int], scores: Sequence[float]) -> Path:
    """{"roc": [{"fpr", "tpr", "threshold"}, ...]}; the (0, 0) point's threshold is null."""
    return write_json_atomic(path, {"roc": roc_points(y_true, scores)})


def write_precision_recall_data(path: Path, y_true: Sequence[int], scores: Sequence[float]) -> Path:
    """{"precision_recall": [{"precision", "recall", "threshold"}, ...]}; the last point's
    threshold is null."""
    return write_json_atomic(path, {"precision_recall": precision_recall_points(y_true, scores)})


def write_calibration_data(path: Path, y_true: Sequence[int], probs: Sequence[float], n_bins: int) -> Path:
    """{"calibration": [{"bin_lower", "bin_upper", "mean_predicted", "fraction_positive", "count"}]},
    one entry per non-empty bin."""
    return write_json_atomic(path, {"calibration": calibration_bins(y_true, probs, n_bins)})


def write_confusion_data(path: Path, y_true: Sequence[int], predicted: Sequence[int]) -> Path:
    """One row per image with columns actual,predicted as class names, for DVC's confusion template."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["actual", "predicted"])
        for actual, guess in zip(y_true, predicted, strict=True):
            writer.writerow([CLASS_NAMES[int(actual)], CLASS_NAMES[int(guess)]])
    return Path(path)


# --- PNG renderings -----------------------------------------------------------------------------

def _new_figure(width: float = 6.0, height: float = 5.0) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI)
    return Path(path)


def _threshold_text(threshold: float, threshold_label: str) -> str:
    return f"threshold {threshold:.3f}" + (f" ({threshold_label})" if threshold_label else "")


def render_roc(path: Path, y_true: Sequence[int], scores: Sequence[float]) -> Path:
    points = roc_points(y_true, scores)
    auc = roc_auc_score(y_true, scores)
    figure = _new_figure()
    axes = figure.add_subplot()
    axes.plot([p["fpr"] for p in points], [p["tpr"] for p in points], color="tab:red", lw=2,
              label=f"detector (AUC = {auc:.3f})")
    axes.plot([0, 1], [0, 1], color="gray", ls="--", lw=1, label="chance (AUC = 0.5)")
    axes.set(title="ROC curve (fake = positive)", xlabel="False positive rate (real called fake)",
             ylabel="True positive rate (fake caught)", xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
    axes.set_aspect("equal")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    return _save(figure, path)


def render_precision_recall(path: Path, y_true: Sequence[int], scores: Sequence[float]) -> Path:
    points = precision_recall_points(y_true, scores)
    average_precision = average_precision_score(y_true, scores, pos_label=FAKE)
    prevalence = float(np.mean(np.asarray(y_true) == FAKE))
    figure = _new_figure()
    axes = figure.add_subplot()
    axes.step([p["recall"] for p in points], [p["precision"] for p in points], where="post",
              color="tab:red", lw=2, label=f"detector (AP = {average_precision:.3f})")
    axes.axhline(prevalence, color="gray", ls="--", lw=1, label=f"chance (AP = {prevalence:.3f})")
    axes.set(title="Precision-recall curve (fake = positive)", xlabel="Recall (fake caught)",
             ylabel="Precision (called fake that are fake)", xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left")
    return _save(figure, path)


def render_calibration(path: Path, y_true: Sequence[int], probs: Sequence[float], n_bins: int) -> Path:
    bins = calibration_bins(y_true, probs, n_bins)
    ece = positive_class_ece(y_true, probs, n_bins)
    figure = _new_figure(6.0, 6.5)
    curve_axes, count_axes = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    curve_axes.plot([0, 1], [0, 1], color="gray", ls="--", lw=1, label="perfectly calibrated")
    curve_axes.plot([b["mean_predicted"] for b in bins], [b["fraction_positive"] for b in bins],
                    marker="o", color="tab:red", lw=2,
                    label=f"detector (positive-class ECE = {ece:.3f}, {n_bins} bins)")
    curve_axes.set(title="Calibration (reliability diagram)", ylabel="Fraction of images that are fake",
                   xlim=(0, 1), ylim=(-0.01, 1.01))
    curve_axes.grid(alpha=0.3)
    curve_axes.legend(loc="upper left")
    width = 1.0 / n_bins
    count_axes.bar([b["bin_lower"] for b in bins], [b["count"] for b in bins], width=width, align="edge",
                   color="tab:gray", edgecolor="white")
    count_axes.set(xlabel="Predicted P(fake)", ylabel="Images per bin")
    return _save(figure, path)


def render_confusion_matrix(path: Path, y_true: Sequence[int], probs: Sequence[float], threshold: float,
                            threshold_label: str = "") -> Path:
    order = [REAL, FAKE]
    matrix = confusion_matrix(y_true, predict_labels(probs, threshold), labels=order)
    row_share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    figure = _new_figure(5.5, 5.0)
    axes = figure.add_subplot()
    image = axes.imshow(row_share, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, label="Share of the actual class")
    names = [CLASS_NAMES[label] for label in order]
    axes.set(xticks=range(len(order)), yticks=range(len(order)), xticklabels=names, yticklabels=names,
             xlabel="Predicted", ylabel="Actual",
             title=f"Confusion matrix\n{_threshold_text(threshold, threshold_label)}")
    for row in range(len(order)):
        for column in range(len(order)):
            share = row_share[row, column]
            axes.text(column, row, f"{matrix[row, column]}\n({share:.1%})", ha="center", va="center",
                      color="white" if share > 0.5 else "black", fontsize=12)
    return _save(figure, path)


def render_score_histogram(path: Path, y_true: Sequence[int], probs: Sequence[float], threshold: float,
                           threshold_label: str = "") -> Path:
    labels = np.asarray(y_true)
    values = np.asarray(probs, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    figure = _new_figure(7.0, 4.5)
    axes = figure.add_subplot()
    for label in (REAL, FAKE):
        members = values[labels == label]
        axes.hist(members, bins=edges, alpha=0.55, color=COLORS[label], edgecolor="white",
                  label=f"actually {CLASS_NAMES[label]} (n = {members.size})")
    axes.axvline(threshold, color="black", ls="--", lw=1.5, label=_threshold_text(threshold, threshold_label))
    axes.set(title="Predicted P(fake) by true class", xlabel="Predicted P(fake)", ylabel="Images",
             xlim=(0, 1))
    axes.legend(loc="best")
    axes.grid(alpha=0.3, axis="y")
    return _save(figure, path)


def draw_generalization(sets: Sequence[Mapping[str, Any]], reference_auc: float | None,
                        unseen_mean_auc: float | None = None) -> Figure:
    """Each set's ROC AUC (rows of cross_dataset.json) with its 95 % interval as whiskers, sets from a
    source seen in training drawn hollow and gray, against the in-distribution test AUC, the mean over
    the unseen sets and chance. Sets without an AUC (one class) are left out."""
    scored = [row for row in sets if row.get("roc_auc") is not None]
    figure = _new_figure(max(6.0, 1.0 + 0.8 * len(scored)), 5.0)
    axes = figure.add_subplot()
    for seen, (label, style) in SEEN_STYLES.items():
        positions = [index for index, row in enumerate(scored) if bool(row.get("seen")) is seen]
        if not positions:
            continue
        aucs = np.array([scored[index]["roc_auc"] for index in positions])
        low = np.array([_auc_bound(scored[index], "low") for index in positions])
        high = np.array([_auc_bound(scored[index], "high") for index in positions])
        axes.errorbar(positions, aucs, yerr=[aucs - low, high - aucs], ls="none", ms=8, capsize=4, lw=1.5,
                      label=label, **style)
    if reference_auc is not None:
        axes.axhline(reference_auc, color="tab:blue", ls="--", lw=1.5,
                     label=f"in-distribution test (AUC = {reference_auc:.3f})")
    if unseen_mean_auc is not None:
        axes.axhline(unseen_mean_auc, color="tab:red", ls=":", lw=1.5,
                     label=f"mean over unseen sets (AUC = {unseen_mean_auc:.3f})")
    axes.axhline(0.5, color="gray", ls="-.", lw=1, label="chance (AUC = 0.5)")
    axes.set_xticks(range(len(scored)), [str(row.get("name")) for row in scored],
                    rotation=30 if len(scored) > 4 else 0, ha="right" if len(scored) > 4 else "center")
    axes.set(title="ROC AUC per data set, with 95 % bootstrap intervals", ylabel="ROC AUC (fake = positive)",
             xlim=(-0.6, max(len(scored), 1) - 0.4), ylim=(-0.02, 1.02))
    axes.grid(alpha=0.3, axis="y")
    # Below the axes: low AUCs, the interesting ones, would sit under a legend drawn inside.
    figure.legend(loc="outside lower center", ncols=2, fontsize="small")
    return figure


def _auc_bound(row: Mapping[str, Any], end: str) -> float:
    """One end of the row's ROC AUC interval; the AUC itself (no whisker) when it has none."""
    bound = row.get(f"roc_auc_ci_{end}")
    return row["roc_auc"] if bound is None else bound


def png_bytes(figure: Figure) -> bytes:
    """The figure as a PNG, for a page that embeds it rather than linking a file."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
