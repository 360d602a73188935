"""The report's sections as ready-to-print rows: every number formatted and every image inlined here,
so the template only lays them out.

Every image becomes a base64 data URI, so the page makes no request of any kind. A missing number
reads "n/a" and a missing file is noted, so a gap in one input never breaks the whole report.
"""
from __future__ import annotations

import base64
import io
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image, ImageOps

from deepfake_detector.components.evaluation.learning import read_learning_check
from deepfake_detector.components.evaluation.metrics import predict_labels
from deepfake_detector.components.evaluation.plots import draw_generalization, png_bytes
from deepfake_detector.components.evaluation.report_inputs import Provenance, ReportInputs
from deepfake_detector.contracts.labels import FAKE, REAL
from deepfake_detector.contracts.scores import Scores

logger = logging.getLogger(__name__)

SECTIONS = (
    ("summary", "Summary"),
    ("metrics", "Metrics"),
    ("confusion", "Confusion matrix"),
    ("curves", "Curves"),
    ("calibration", "Calibration"),
    ("robustness", "Robustness"),
    ("cross-dataset", "Unseen generators"),
    ("shortcut-audit", "Shortcut audit"),
    ("errors", "Worst errors"),
    ("params", "Params"),
)

# Known scores in reading order; any other numeric score is listed after them, so a metric added
# later to the evaluator is shown rather than silently dropped.
METRIC_LABELS = {
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "roc_auc": "ROC AUC",
    "average_precision": "Average precision",
    "eer": "Equal error rate",
    "f1": "F1 (fake = positive)",
    "precision": "Precision",
    "recall": "Recall",
    "tpr_at_fpr_1pct": "TPR at 1 % FPR",
    "log_loss": "Log loss (calibrated)",
    "log_loss_uncalibrated": "Log loss before temperature scaling",
    "ece_top_label": "Top-label ECE, calibrated (Guo et al. 2017)",
    "ece_top_label_uncalibrated": "Top-label ECE before temperature scaling",
    "ece_positive_class": "Positive-class ECE, calibrated",
    "ece_positive_class_uncalibrated": "Positive-class ECE before temperature scaling",
    "val_roc_auc": "Validation ROC AUC",
    "temperature": "Temperature (fitted on val)",
    "threshold": "Decision threshold (calibrated P(fake))",
    "threshold_uncalibrated": "Decision threshold on the raw model output",
}
COUNT_KEYS = ("n_test", "n_val", "total_parameters")
CALIBRATION_KEYS = ("temperature", "ece_top_label_uncalibrated", "ece_top_label", "ece_positive_class_uncalibrated",
                    "ece_positive_class", "log_loss_uncalibrated", "log_loss")
THRESHOLD_DIGITS = 4  # a calibrated threshold can sit at 0.9997, which three digits would show as 1.000
SUMMARY_KEYS = ("roc_auc", "accuracy", "eer", "f1")
# scores.json's `video` block (frames sampled from videos): the test videos' metrics the report lists.
VIDEO_METRICS = ("roc_auc", "accuracy", "balanced_accuracy", "eer", "f1", "average_precision")
CI_SUFFIXES = ("_ci_low", "_ci_high")

# (plot name, i.e. the PNG's stem in the plots folder, and its caption) per section.
CURVE_PLOTS = (("roc", "ROC curve"), ("precision_recall", "Precision-recall curve"),
               ("score_histogram", "Score histogram"))
CONFUSION_PLOTS = (("confusion_matrix", "Confusion matrix"),)
CALIBRATION_PLOTS = (("calibration", "Reliability diagram"),
                     ("reliability", "Reliability before and after calibration"))

ROBUSTNESS_METRICS = ("roc_auc", "accuracy", "eer")
# (key, heading, is numeric) for the plain data tables.
ROBUSTNESS_TABLE = (("perturbation", "Perturbation", False), ("severity", "Severity", False),
                    ("roc_auc", "ROC AUC", True), ("accuracy", "Accuracy", True), ("eer", "EER", True),
                    ("auc_change", "AUC change vs clean", True))
# (cross_dataset.json key, heading): each shown with its 95 % interval beneath it.
GENERALIZATION_METRICS = (("roc_auc", "ROC AUC"), ("accuracy", "Accuracy"), ("eer", "EER"),
                          ("average_precision", "Average precision"))
GENERALIZATION_FIGURE = "ROC AUC per set: generators unseen in training against the in-distribution test"
THUMBNAIL_PX = 112
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
NOT_AVAILABLE = "n/a"


@dataclass(frozen=True)
class Figure:
    """A titled image ready for an <img src>; data_uri is None when its file was missing."""

    title: str
    data_uri: str | None
    source: str


@dataclass(frozen=True)
class ErrorImage:
    """One misclassified test image: its path, P(fake) and, if it could be read, a thumbnail."""

    path: str
    name: str
    p_fake: str
    thumbnail: str | None


def report_context(inputs: ReportInputs) -> dict[str, Any]:
    """The template's variables for inputs. False positives and negatives follow the scores' decision
    rule (P(fake) >= threshold), as the evaluator's confusion matrix does, so gallery and matrix agree."""
    scores = score_values(inputs.scores)
    threshold = inputs.scores.rule.threshold
    test_predictions = _test_predictions(inputs.predictions)
    return {
        "title": inputs.title,
        "sections": SECTIONS,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "commit": _commit_text(inputs.provenance),
        "parameters": _count(scores.get("total_parameters")),
        "summary": _summary(scores, threshold, inputs.shortcut_audit),
        "learning_warning": _learning_warning(inputs.scores),
        "metrics": _metric_rows(scores),
        "video": _video_level(scores.get("video")),
        "confusion_figures": _figures(inputs.plots, CONFUSION_PLOTS),
        "confusion_counts": _confusion_counts(test_predictions, threshold),
        "curve_figures": _figures(inputs.plots, CURVE_PLOTS),
        "calibration_figures": _figures(inputs.plots, CALIBRATION_PLOTS),
        "calibration_rows": _calibration_rows(scores),
        "robustness_table": ROBUSTNESS_TABLE,
        "robustness_rows": _robustness_rows(inputs.robustness),
        "robustness_figures": _optional_figure(inputs.robustness_png, "Robustness curves"),
        "generalization_metrics": [heading for _, heading in GENERALIZATION_METRICS],
        "generalization": _generalization(inputs.cross_dataset),
        "shortcut_audit": _shortcut_audit(inputs.shortcut_audit),
        "errors": _worst_errors(test_predictions, inputs.dataset_dir, threshold, inputs.worst_k),
        "dataset_dir_given": inputs.dataset_dir is not None,
        "params": _flatten(inputs.params),
    }


def score_values(scores: Scores) -> dict[str, Any]:
    """scores.json as one flat mapping again: the metrics plus the decision rule's numbers."""
    rule = scores.rule
    values = {**scores.metrics, "threshold": rule.threshold, "temperature": rule.temperature}
    if rule.recorded_raw_threshold is not None:
        values["threshold_uncalibrated"] = rule.recorded_raw_threshold
    return values


# --- formatting ---------------------------------------------------------------------------------

def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any, digits: int = 3) -> str:
    """A metric as text; None, NaN and non-numbers read "n/a" so a gap never breaks the report."""
    if not _is_number(value) or not math.isfinite(value):
        return NOT_AVAILABLE
    return f"{value:,}" if isinstance(value, int) else f"{value:.{digits}f}"


def _count(value: Any) -> str | None:
    return f"{int(value):,}" if _is_number(value) and math.isfinite(value) else None


def _ci(scores: Mapping[str, Any], key: str) -> str | None:
    low, high = scores.get(f"{key}_ci_low"), scores.get(f"{key}_ci_high")
    if not (_is_number(low) and _is_number(high)):
        return None
    return f"{_number(low)} – {_number(high)}"


def _commit_text(provenance: Provenance) -> str | None:
    if not provenance.commit:
        return None
    return f"{provenance.commit[:12]}{' (uncommitted changes)' if provenance.dirty else ''}"


# --- sections -----------------------------------------------------------------------------------

def _summary(scores: Mapping[str, Any], threshold: float,
             shortcut_audit: Mapping[str, Any] | None) -> dict[str, Any]:
    cards = [{"label": METRIC_LABELS[key], "value": _number(scores[key]), "ci": _ci(scores, key)}
             for key in SUMMARY_KEYS if key in scores]
    cards.append({"label": "Decision threshold", "value": _number(threshold, THRESHOLD_DIGITS), "ci": None})
    counts = [(label, _count(scores.get(key))) for key, label in
              (("n_test", "test images"), ("n_val", "validation images"), ("total_parameters", "parameters"))]
    flagged = list((shortcut_audit or {}).get("flagged") or [])
    return {"cards": cards, "counts": [(label, value) for label, value in counts if value is not None],
            "flagged_cues": flagged if shortcut_audit is not None else None}


def _learning_warning(scores: Scores) -> str | None:
    """The evaluate stage's verdict when the model did not learn (its validation AUC interval reaches 0.5)."""
    check = read_learning_check(scores.metrics)
    return None if check is None else check.warning()


def _metric_rows(scores: Mapping[str, Any]) -> list[dict[str, Any]]:
    hidden = set(COUNT_KEYS)
    known = [key for key in METRIC_LABELS if key in scores]
    others = [key for key, value in scores.items()
              if key not in METRIC_LABELS and key not in hidden and _is_number(value)
              and not key.endswith(CI_SUFFIXES)]
    return [{"label": METRIC_LABELS.get(key, key.replace("_", " ")), "key": key,
             "value": _number(scores[key], THRESHOLD_DIGITS if key.startswith("threshold") else 3),
             "ci": _ci(scores, key)} for key in known + others]


def _video_level(video: Any) -> dict[str, Any] | None:
    """The video-level view (None for still images): which aggregation rule won on the validation videos, each
    rule's validation AUC, and the test videos' metrics at the video threshold."""
    if not isinstance(video, Mapping):
        return None
    chosen = video.get("aggregation")
    aucs = video.get("aggregation_val_roc_auc")
    summary = (f"Frame scores (calibrated P(fake)) are aggregated per video by {chosen}, the rule with the highest "
               f"ROC AUC on {_number(video.get('n_val_videos'))} validation videos; a video is fake at "
               f"{_number(video.get('threshold'), THRESHOLD_DIGITS)} or above ({video.get('threshold_rule')}). "
               f"Test: {_number(video.get('n_test_videos'))} videos, median "
               f"{_number(video.get('frames_per_video'), 1)} frames each. The frame-level intervals above resample "
               "whole videos, since frames of one video are not independent.")
    return {"summary": summary,
            "rules": [{"rule": str(rule), "auc": _number(auc), "chosen": rule == chosen}
                      for rule, auc in (aucs.items() if isinstance(aucs, Mapping) else ())],
            "metrics": [{"label": METRIC_LABELS[key], "key": key, "value": _number(video[key]), "ci": _ci(video, key)}
                        for key in VIDEO_METRICS if key in video]}


def _calibration_rows(scores: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"label": METRIC_LABELS[key], "value": _number(scores[key])}
            for key in CALIBRATION_KEYS if key in scores]


def _data_uri(path: Path) -> str | None:
    """The file as a data URI, or None (logged) when it does not exist."""
    mime = IMAGE_TYPES.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"{path}: cannot embed this file in the report; expected one of "
                         f"{', '.join(sorted(IMAGE_TYPES))}")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        logger.warning("Report image %s does not exist; its figure is left out", path)
        return None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _figures(plots: Mapping[str, Path], wanted: tuple[tuple[str, str], ...]) -> list[Figure]:
    return [figure for name, title in wanted for figure in _optional_figure(plots.get(name), title)]


def _optional_figure(path: Path | None, title: str) -> list[Figure]:
    return [] if path is None else [Figure(title, _data_uri(Path(path)), Path(path).name)]


def _test_predictions(predictions: pd.DataFrame | None) -> pd.DataFrame | None:
    return None if predictions is None else predictions[predictions["split"] == "test"]


def _confusion_counts(test: pd.DataFrame | None, threshold: float) -> dict[str, int] | None:
    if test is None or test.empty:
        return None
    actual = test["label"].to_numpy()
    predicted = predict_labels(test["p_fake"].to_numpy(), threshold)
    return {
        "tn": int(((actual == REAL) & (predicted == REAL)).sum()),
        "fp": int(((actual == REAL) & (predicted == FAKE)).sum()),
        "fn": int(((actual == FAKE) & (predicted == REAL)).sum()),
        "tp": int(((actual == FAKE) & (predicted == FAKE)).sum()),
    }


def _thumbnail(path: Path) -> str | None:
    """A JPEG thumbnail, upright as a viewer shows it (EXIF-transposed), or None if unreadable."""
    try:
        with Image.open(path) as image:
            upright = ImageOps.exif_transpose(image).convert("RGB")
    except (OSError, Image.DecompressionBombError) as error:
        logger.warning("Report thumbnail of %s left out: %s", path, error)
        return None
    upright.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    upright.save(buffer, format="JPEG", quality=85)
    return f"data:image/jpeg;base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def _error_images(rows: pd.DataFrame, dataset_dir: Path | None) -> list[ErrorImage]:
    return [ErrorImage(path=str(row.path), name=Path(str(row.path)).name, p_fake=_number(float(row.p_fake), 4),
                       thumbnail=None if dataset_dir is None else _thumbnail(Path(dataset_dir) / str(row.path)))
            for row in rows.itertuples(index=False)]


def _worst_errors(test: pd.DataFrame | None, dataset_dir: Path | None, threshold: float,
                  worst_k: int) -> dict[str, list[ErrorImage]] | None:
    """The most confident mistakes: real images scored most fake, fake images scored most real."""
    if test is None:
        return None
    predicted = predict_labels(test["p_fake"].to_numpy(), threshold)
    false_positives = test[(test["label"].to_numpy() == REAL) & (predicted == FAKE)]
    false_negatives = test[(test["label"].to_numpy() == FAKE) & (predicted == REAL)]
    # A stable sort keeps predictions.csv order among equal scores, so the report is reproducible.
    worst_fp = false_positives.sort_values("p_fake", ascending=False, kind="stable").head(worst_k)
    worst_fn = false_negatives.sort_values("p_fake", ascending=True, kind="stable").head(worst_k)
    return {"false_positives": _error_images(worst_fp, dataset_dir),
            "false_negatives": _error_images(worst_fn, dataset_dir)}


def _robustness_rows(robustness: Mapping[str, Any] | None) -> list[dict[str, str]] | None:
    if robustness is None:
        return None
    clean = robustness.get("clean") or {}
    clean_auc = clean.get("roc_auc")

    def row(perturbation: str, severity: str, values: Mapping[str, Any]) -> dict[str, str]:
        auc = values.get("roc_auc")
        change = auc - clean_auc if _is_number(auc) and _is_number(clean_auc) else None
        return {"perturbation": perturbation, "severity": severity,
                **{metric: _number(values.get(metric)) for metric in ROBUSTNESS_METRICS},
                "auc_change": NOT_AVAILABLE if change is None else f"{change:+.3f}"}

    rows = [row("clean", "", clean)] if clean else []
    for perturbation, severities in robustness.items():
        if perturbation == "clean":
            continue
        if not isinstance(severities, Mapping):
            raise ValueError(f"robustness[{perturbation!r}] must map severity -> metrics, "
                             f"got {type(severities).__name__}")
        rows.extend(row(perturbation, str(severity), values) for severity, values in severities.items())
    return rows


def _generalization(cross_dataset: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The leave-one-generator-out view of cross_dataset.json: the in-distribution test row, then each set
    with its intervals and whether training saw its source, the summary over the unseen ones, and a plot."""
    if cross_dataset is None:
        return None
    reference, sets = cross_dataset.get("reference"), list(cross_dataset.get("sets") or [])
    rows = ([_generalization_row({"seen": True, **reference}, is_reference=True)] if reference else [])
    rows += [_generalization_row(entry, is_reference=False) for entry in sets]
    summary = cross_dataset.get("summary")
    figures = []
    if any(_is_number(entry.get("roc_auc")) for entry in sets):
        figure = draw_generalization(sets, (reference or {}).get("roc_auc"), (summary or {}).get("mean_roc_auc"))
        data_uri = f"data:image/png;base64,{base64.b64encode(png_bytes(figure)).decode('ascii')}"
        figures.append(Figure(GENERALIZATION_FIGURE, data_uri, "cross_dataset.json"))
    return {"rows": rows, "summary": None if summary is None else _unseen_summary_text(summary),
            "figures": figures}


def _generalization_row(entry: Mapping[str, Any], *, is_reference: bool) -> dict[str, Any]:
    seen = entry.get("seen")
    images = _number(entry.get("n"))
    if _is_number(entry.get("n_fake")) and _is_number(entry.get("n_real")):
        images += f" ({_number(entry['n_fake'])} fake, {_number(entry['n_real'])} real)"
    return {"name": str(entry.get("name") or NOT_AVAILABLE), "source": str(entry.get("source") or NOT_AVAILABLE),
            "seen": NOT_AVAILABLE if seen is None else "yes" if seen else "no",
            "kind": "reference" if is_reference else "seen" if seen else "unseen", "images": images,
            "metrics": [{"value": _number(entry.get(key)), "ci": _ci(entry, key)} for key, _ in GENERALIZATION_METRICS],
            "note": str(entry.get("note") or "")}


def _unseen_summary_text(summary: Mapping[str, Any]) -> str:
    """One sentence over the sets training did not see: mean (with its interval) and lowest, per metric."""
    if not summary.get("n_sets"):
        return ("No set is both from a source unseen in training and holding both classes, so there is no "
                "mean over unseen generators.")
    parts = []
    for key, label in (("roc_auc", "ROC AUC"), ("accuracy", "accuracy")):
        interval = _ci(summary, f"mean_{key}")
        parts.append(f"mean {label} {_number(summary.get(f'mean_{key}'))}"
                     f"{f' (95 % CI {interval})' if interval else ''}, lowest {_number(summary.get(f'min_{key}'))} "
                     f"on {summary.get(f'min_{key}_set')}")
    count = summary["n_sets"]
    return (f"Over the {count} set{'s' if count != 1 else ''} from sources unseen in training "
            f"({', '.join(map(str, summary.get('sets') or []))}): {'; '.join(parts)}.")


def _shortcut_audit(audit: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if audit is None:
        return None
    flagged_names = set(audit.get("flagged") or [])
    cues = [{"name": name, "auc": _number(cue.get("auc")), "description": cue.get("description", ""),
             "flagged": bool(cue.get("flagged")) or name in flagged_names}
            for name, cue in (audit.get("cues") or {}).items()]
    return {"warn_auc": _number(audit.get("warn_auc")), "cues": cues, "n_images": _count(audit.get("n_images")),
            "folds": _count(audit.get("folds")),
            "flagged_count": sum(cue["flagged"] for cue in cues)}


def _flatten(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested params as (dotted key, value) rows, the way params.yaml keys are named elsewhere."""
    rows: list[tuple[str, str]] = []
    for key, value in params.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            rows.extend(_flatten(value, f"{dotted}."))
        else:
            # JSON spelling (null, true, ["a"]) reads like params.yaml; Python's (None, True) would not.
            rows.append((dotted, value if isinstance(value, str) else json.dumps(value, default=str)))
    return rows
