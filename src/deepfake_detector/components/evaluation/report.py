"""The evaluation report: one self-contained HTML file a person opens offline to judge the model.

Every image is embedded as a base64 data URI and the CSS is inline, so the file makes no request
of any kind and needs no JavaScript. Each input but the scores is optional: a section without its
input says so instead of failing, because a run may skip robustness, cross-dataset or audit stages.
"""
from __future__ import annotations

import base64
import functools
import io
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from PIL import Image, ImageOps

from deepfake_detector.components.evaluation.metrics import predict_labels
from deepfake_detector.contracts.labels import FAKE, REAL
from deepfake_detector.utils.files import write_text_atomic

logger = logging.getLogger(__name__)

SECTIONS = (
    ("summary", "Summary"),
    ("metrics", "Metrics"),
    ("confusion", "Confusion matrix"),
    ("curves", "Curves"),
    ("calibration", "Calibration"),
    ("robustness", "Robustness"),
    ("cross-dataset", "Cross-dataset"),
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
    "ece": "Expected calibration error (calibrated)",
    "ece_uncalibrated": "ECE before temperature scaling",
    "temperature": "Temperature (fitted on val)",
    "threshold": "Decision threshold (calibrated P(fake))",
    "threshold_uncalibrated": "Decision threshold on the raw model output",
}
COUNT_KEYS = ("n_test", "n_val", "total_parameters")
CALIBRATION_KEYS = ("temperature", "ece_uncalibrated", "ece", "log_loss_uncalibrated", "log_loss")
THRESHOLD_DIGITS = 4  # a calibrated threshold can sit at 0.9997, which three digits would show as 1.000
SUMMARY_KEYS = ("roc_auc", "accuracy", "eer", "f1")
CI_SUFFIXES = ("_ci_low", "_ci_high")

CURVE_PLOTS = (("roc", "ROC curve"), ("precision_recall", "Precision-recall curve"),
               ("score_histogram", "Score histogram"))
CONFUSION_PLOTS = (("confusion_matrix", "Confusion matrix"),)
CALIBRATION_PLOTS = (("calibration", "Reliability diagram"),)

PREDICTION_COLUMNS = ("path", "label", "split", "p_fake")
ROBUSTNESS_METRICS = ("roc_auc", "accuracy", "eer")
# (key, heading, is numeric) for the plain data tables.
ROBUSTNESS_TABLE = (("perturbation", "Perturbation", False), ("severity", "Severity", False),
                    ("roc_auc", "ROC AUC", True), ("accuracy", "Accuracy", True), ("eer", "EER", True),
                    ("auc_change", "AUC change vs clean", True))
CROSS_DATASET_TABLE = (("name", "Set", False), ("source", "Source", False), ("n", "Images", True),
                       ("n_fake", "Fake", True), ("n_real", "Real", True), ("roc_auc", "ROC AUC", True),
                       ("accuracy", "Accuracy", True), ("eer", "EER", True),
                       ("average_precision", "Average precision", True), ("note", "Note", False))
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


def build_report(*, out_file: Path, scores: Mapping[str, Any], params: Mapping[str, Any],
                 plots: Mapping[str, Path], predictions: pd.DataFrame | None, dataset_dir: Path | None,
                 threshold: float, robustness: Mapping[str, Any] | None, robustness_png: Path | None,
                 cross_dataset: Mapping[str, Any] | None, shortcut_audit: Mapping[str, Any] | None,
                 reliability_png: Path | None, worst_k: int = 6,
                 title: str = "deepfake-detector evaluation report",
                 git: Mapping[str, Any] | None = None) -> Path:
    """Write the report to out_file atomically and return its path.

    git is provenance.git_commit's {"commit", "dirty"}; the header leaves the commit out when it is
    unknown. False positives and negatives are decided by P(fake) >= threshold, the rule the
    evaluator's confusion matrix uses, so the error gallery and the matrix agree.
    """
    if worst_k < 0:
        raise ValueError(f"worst_k must be 0 or more, got {worst_k}")
    if _is_number(scores.get("threshold")) and not math.isclose(scores["threshold"], threshold):
        logger.warning("The report's threshold %g differs from scores.json's %g; errors and the summary use %g",
                       threshold, scores["threshold"], threshold)
    test_predictions = _test_predictions(predictions)
    context = {
        "title": title,
        "sections": SECTIONS,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "commit": _commit_text(git),
        "parameters": _count(scores.get("total_parameters")),
        "summary": _summary(scores, threshold, shortcut_audit),
        "metrics": _metric_rows(scores),
        "confusion_figures": _figures(plots, CONFUSION_PLOTS),
        "confusion_counts": _confusion_counts(test_predictions, threshold),
        "curve_figures": _figures(plots, CURVE_PLOTS),
        "calibration_figures": _figures(plots, CALIBRATION_PLOTS)
        + _optional_figure(reliability_png, "Reliability before and after calibration"),
        "calibration_rows": _calibration_rows(scores),
        "robustness_table": ROBUSTNESS_TABLE,
        "robustness_rows": _robustness_rows(robustness),
        "robustness_figures": _optional_figure(robustness_png, "Robustness curves"),
        "cross_dataset_table": CROSS_DATASET_TABLE,
        "cross_dataset": _cross_dataset_rows(cross_dataset),
        "shortcut_audit": _shortcut_audit(shortcut_audit),
        "errors": _worst_errors(test_predictions, dataset_dir, threshold, worst_k),
        "dataset_dir_given": dataset_dir is not None,
        "params": _flatten(params),
    }
    html = _template().render(**context)
    write_text_atomic(out_file, html)
    logger.info("Wrote the evaluation report to %s (%d KiB)", out_file, len(html.encode()) // 1024)
    return Path(out_file)


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


def _commit_text(git: Mapping[str, Any] | None) -> str | None:
    commit = (git or {}).get("commit")
    if not commit:
        return None
    return f"{str(commit)[:12]}{' (uncommitted changes)' if (git or {}).get('dirty') else ''}"


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


def _metric_rows(scores: Mapping[str, Any]) -> list[dict[str, Any]]:
    hidden = set(COUNT_KEYS)
    known = [key for key in METRIC_LABELS if key in scores]
    others = [key for key, value in scores.items()
              if key not in METRIC_LABELS and key not in hidden and _is_number(value)
              and not key.endswith(CI_SUFFIXES)]
    return [{"label": METRIC_LABELS.get(key, key.replace("_", " ")), "key": key,
             "value": _number(scores[key], THRESHOLD_DIGITS if key.startswith("threshold") else 3),
             "ci": _ci(scores, key)} for key in known + others]


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
    return [Figure(title, _data_uri(Path(plots[name])), Path(plots[name]).name)
            for name, title in wanted if plots.get(name) is not None]


def _optional_figure(path: Path | None, title: str) -> list[Figure]:
    return [] if path is None else [Figure(title, _data_uri(Path(path)), Path(path).name)]


def _test_predictions(predictions: pd.DataFrame | None) -> pd.DataFrame | None:
    if predictions is None:
        return None
    missing = [column for column in PREDICTION_COLUMNS if column not in predictions.columns]
    if missing:
        raise ValueError(f"predictions lack column(s) {', '.join(missing)}; expected "
                         f"{', '.join(PREDICTION_COLUMNS)} as in predictions.csv")
    return predictions[predictions["split"] == "test"]


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


def _cross_dataset_rows(cross_dataset: Mapping[str, Any] | None) -> list[dict[str, str]] | None:
    if cross_dataset is None:
        return None
    entries = []
    if cross_dataset.get("reference"):
        entries.append({"source": "reference (in-distribution test)", **cross_dataset["reference"]})
    entries.extend(cross_dataset.get("sets") or [])
    blank = {"note": ""}  # most sets need no note; a missing name or source is a gap worth showing
    return [{key: _number(entry.get(key)) if is_numeric else str(entry.get(key) or blank.get(key, NOT_AVAILABLE))
             for key, _, is_numeric in CROSS_DATASET_TABLE} for entry in entries]


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


@functools.cache
def _template() -> jinja2.Template:
    # Autoescape on: file names, cue descriptions and params are data, never markup.
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                                     trim_blocks=True, lstrip_blocks=True)
    return environment.from_string(TEMPLATE)


TEMPLATE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --bad: #b42318; --bad-bg: #fde8e7; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.45;
       font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header, main { max-width: 1120px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; }
h1 { margin: 0 0 4px; font-size: 1.7rem; }
h2 { margin: 0 0 12px; font-size: 1.3rem; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 1.05rem; margin: 16px 0 8px; }
.meta { color: var(--muted); margin: 0; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid var(--line); padding: 8px 0;
      margin-top: 12px; }
nav a { display: inline-block; margin: 2px 12px 2px 0; color: #0b5cad; text-decoration: none; font-size: .95rem; }
nav a:hover { text-decoration: underline; }
section { padding: 20px 0 8px; }
table { border-collapse: collapse; margin: 4px 0 12px; font-size: .95rem; }
th, td { border: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: var(--soft); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; min-width: 150px;
        background: var(--soft); }
.card .value { font-size: 1.5rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .label, .card .ci { color: var(--muted); font-size: .85rem; }
.figures { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; max-width: 100%; }
.figures figure { flex: 0 1 520px; }
.figures img { width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: .85rem; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; }
.gallery figure { width: 132px; }
.gallery img { width: auto; max-width: 112px; max-height: 112px; }
.gallery .no-image { width: 112px; height: 112px; display: flex; align-items: center; justify-content: center;
                     border: 1px dashed var(--line); color: var(--muted); font-size: .8rem; text-align: center; }
.gallery figcaption { overflow-wrap: anywhere; }
.missing { color: var(--muted); font-style: italic; }
tr.flagged td { background: var(--bad-bg); }
.flag { color: var(--bad); font-weight: 600; }
pre { background: var(--soft); padding: 8px; overflow-x: auto; }
@media print {
  nav { display: none; }
  header, main { max-width: none; padding: 0; }
  figure, table, .card { break-inside: avoid; }
  h2 { break-after: avoid; }
}
</style>
</head>
<body>
{% macro missing(what) %}<p class="missing">{{ what }}: not produced by this run.</p>{% endmacro %}
{% macro figure_list(figures) %}
<div class="figures">
{% for figure in figures %}
<figure>
{% if figure.data_uri %}
<img src="{{ figure.data_uri }}" alt="{{ figure.title }}">
{% else %}
<p class="missing">{{ figure.source }}: file not found.</p>
{% endif %}
<figcaption>{{ figure.title }}</figcaption>
</figure>
{% endfor %}
</div>
{% endmacro %}
{% macro data_table(columns, rows) %}
<table>
<thead><tr>{% for _, heading, _ in columns %}<th>{{ heading }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in rows %}
<tr>
{%- for key, _, is_numeric in columns %}<td{{ ' class="num"' | safe if is_numeric }}>{{ row[key] }}</td>{% endfor -%}
</tr>
{% endfor %}
</tbody>
</table>
{% endmacro %}
{% macro gallery(images, kind, dataset_dir_given) %}
{% if images %}
<div class="gallery">
{% for image in images %}
<figure title="{{ image.path }}">
{% if image.thumbnail %}
<img src="{{ image.thumbnail }}" alt="{{ image.name }}">
{% else %}
<div class="no-image">{{ 'image not embedded' if not dataset_dir_given else 'image unreadable' }}</div>
{% endif %}
<figcaption>{{ image.name }}<br>P(fake) {{ image.p_fake }}</figcaption>
</figure>
{% endfor %}
</div>
{% else %}
<p>No {{ kind }} on the test split.</p>
{% endif %}
{% endmacro %}
<header>
<h1>{{ title }}</h1>
<p class="meta">Generated {{ generated }}
{%- if commit %} · commit {{ commit }}{% endif %}
{%- if parameters %} · {{ parameters }} model parameters{% endif %}</p>
<nav>{% for id, label in sections %}<a href="#{{ id }}">{{ label }}</a>{% endfor %}</nav>
</header>
<main>
<section id="summary">
<h2>Summary</h2>
<div class="cards">
{% for card in summary.cards %}
<div class="card"><div class="label">{{ card.label }}</div><div class="value">{{ card.value }}</div>
{% if card.ci %}<div class="ci">95 % CI {{ card.ci }}</div>{% endif %}</div>
{% endfor %}
</div>
{% if summary.counts %}
<p>{% for label, value in summary.counts %}{{ value }} {{ label }}{{ " · " if not loop.last }}{% endfor %}</p>
{% endif %}
{% if summary.flagged_cues is not none %}
{% if summary.flagged_cues %}
<p class="flag">Shortcut audit flagged: {{ summary.flagged_cues | join(", ") }}.</p>
{% else %}
<p>Shortcut audit: no cue flagged.</p>
{% endif %}
{% endif %}
</section>

<section id="metrics">
<h2>Metrics (test split)</h2>
{% if metrics %}
<table>
<thead><tr><th>Metric</th><th>Value</th><th>95 % CI</th></tr></thead>
<tbody>
{% for row in metrics %}
<tr data-metric="{{ row.key }}"><td>{{ row.label }}</td><td class="num">{{ row.value }}</td>
<td class="num">{{ row.ci or "" }}</td></tr>
{% endfor %}
</tbody>
</table>
{% else %}
{{ missing("Metrics") }}
{% endif %}
</section>

<section id="confusion">
<h2>Confusion matrix</h2>
{% if confusion_counts %}
<table>
<thead><tr><th>Actual \\ predicted</th><th>real</th><th>fake</th></tr></thead>
<tbody>
<tr><th>real</th><td class="num">{{ confusion_counts.tn }}</td><td class="num">{{ confusion_counts.fp }}</td></tr>
<tr><th>fake</th><td class="num">{{ confusion_counts.fn }}</td><td class="num">{{ confusion_counts.tp }}</td></tr>
</tbody>
</table>
{% endif %}
{% if confusion_figures %}{{ figure_list(confusion_figures) }}{% endif %}
{% if not confusion_counts and not confusion_figures %}{{ missing("Confusion matrix") }}{% endif %}
</section>

<section id="curves">
<h2>Curves</h2>
{% if curve_figures %}
{{ figure_list(curve_figures) }}
{% else %}
{{ missing("ROC and precision-recall curves") }}
{% endif %}
</section>

<section id="calibration">
<h2>Calibration</h2>
{% if calibration_rows %}
<table>
<tbody>
{% for row in calibration_rows %}<tr><td>{{ row.label }}</td><td class="num">{{ row.value }}</td></tr>
{% endfor %}
</tbody>
</table>
{% endif %}
{% if calibration_figures %}{{ figure_list(calibration_figures) }}{% endif %}
{% if not calibration_rows and not calibration_figures %}{{ missing("Calibration") }}{% endif %}
</section>

<section id="robustness">
<h2>Robustness</h2>
{% if robustness_rows %}
{{ data_table(robustness_table, robustness_rows) }}
{% endif %}
{% if robustness_figures %}{{ figure_list(robustness_figures) }}{% endif %}
{% if not robustness_rows and not robustness_figures %}{{ missing("Robustness evaluation") }}{% endif %}
</section>

<section id="cross-dataset">
<h2>Cross-dataset</h2>
{% if cross_dataset %}
{{ data_table(cross_dataset_table, cross_dataset) }}
{% else %}
{{ missing("Cross-dataset evaluation") }}
{% endif %}
</section>

<section id="shortcut-audit">
<h2>Shortcut audit</h2>
{% if shortcut_audit %}
<p>Warning level: ROC AUC {{ shortcut_audit.warn_auc }}. A flagged cue tells fake from real on its own, so the
model may be learning it instead of the face. {{ shortcut_audit.flagged_count }} flagged
{%- if shortcut_audit.n_images %} (audited on {{ shortcut_audit.n_images }} images
{%- if shortcut_audit.folds %}, {{ shortcut_audit.folds }}-fold cross-validation{% endif %}){% endif %}.</p>
{% if shortcut_audit.cues %}
<table>
<thead><tr><th>Cue</th><th>AUC</th><th>Flagged</th><th>What it measures</th></tr></thead>
<tbody>
{% for cue in shortcut_audit.cues %}
<tr{% if cue.flagged %} class="flagged"{% endif %}><td>{{ cue.name }}</td><td class="num">{{ cue.auc }}</td>
<td>{% if cue.flagged %}<span class="flag">⚠ flagged</span>{% else %}no{% endif %}</td>
<td>{{ cue.description }}</td></tr>
{% endfor %}
</tbody>
</table>
{% endif %}
{% else %}
{{ missing("Shortcut audit") }}
{% endif %}
</section>

<section id="errors">
<h2>Worst errors (test split)</h2>
{% if errors %}
{% if not dataset_dir_given %}<p class="missing">Thumbnails not embedded: no dataset folder was given.</p>{% endif %}
<h3>False positives: real images scored most fake</h3>
{{ gallery(errors.false_positives, "false positives", dataset_dir_given) }}
<h3>False negatives: fake images scored most real</h3>
{{ gallery(errors.false_negatives, "false negatives", dataset_dir_given) }}
{% else %}
{{ missing("Per-image predictions") }}
{% endif %}
</section>

<section id="params">
<h2>Params</h2>
{% if params %}
<table>
<thead><tr><th>Key</th><th>Value</th></tr></thead>
<tbody>
{% for key, value in params %}<tr><td><code>{{ key }}</code></td><td><code>{{ value }}</code></td></tr>
{% endfor %}
</tbody>
</table>
{% else %}
{{ missing("Params") }}
{% endif %}
</section>
</main>
</body>
</html>
"""
