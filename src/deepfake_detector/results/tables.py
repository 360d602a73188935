"""README's results tables as Markdown: one function per table, each reading only the outputs it lists.

One number format throughout: ranking metrics (ROC AUC, average precision) and the threshold with four
decimals, every other rate with three; a value an output leaves empty reads "n/a".
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deepfake_detector.contracts.labels import FAKE, REAL
from deepfake_detector.results.outputs import PipelineOutputs, ResultsError

RATE_DIGITS = 3
RANKING_DIGITS = 4
NOT_AVAILABLE = "n/a"
CLEAN = "clean"   # robustness.json's key for the unperturbed test split

# (label, scores.json key, digits), in reading order; a key the file lacks is left out.
METRIC_ROWS = (
    ("ROC AUC", "roc_auc", RANKING_DIGITS),
    ("average precision", "average_precision", RANKING_DIGITS),
    ("EER", "eer", RATE_DIGITS),
    ("accuracy", "accuracy", RATE_DIGITS),
    ("balanced accuracy", "balanced_accuracy", RATE_DIGITS),
    ("F1 (fake = positive)", "f1", RATE_DIGITS),
    ("precision", "precision", RATE_DIGITS),
    ("recall", "recall", RATE_DIGITS),
    ("TPR at 1 % FPR", "tpr_at_fpr_1pct", RATE_DIGITS),
    ("log loss (calibrated)", "log_loss", RATE_DIGITS),
    ("top-label ECE (calibrated; Guo et al. 2017)", "ece_top_label", RATE_DIGITS),
    ("positive-class ECE (calibrated)", "ece_positive_class", RATE_DIGITS),
    ("validation ROC AUC", "val_roc_auc", RANKING_DIGITS),
)
# A metric that can be unresolvable on a small split: its note replaces a missing value.
NOTES = {"tpr_at_fpr_1pct": "tpr_at_fpr_1pct_note"}
@dataclass(frozen=True)
class Table:
    name: str                                          # README markers: <!-- results:NAME:start/end -->
    sources: tuple[str, ...]                           # the output keys it reads (outputs.output_files)
    render: Callable[[PipelineOutputs], list[str]]     # its Markdown lines


# --- formatting ---------------------------------------------------------------------------------

def number(value: Any, digits: int = RATE_DIGITS) -> str:
    """A value as README shows it: fixed decimals for a finite number, "n/a" for None or NaN, and any
    other value (a note such as "not resolvable") as written."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return NOT_AVAILABLE
    return f"{value:.{digits}f}"


def interval(low: Any, high: Any, digits: int = RATE_DIGITS) -> str:
    """'0.975 – 1.000', with the digits of the value it belongs to; empty when there is no interval."""
    if low is None or high is None:
        return ""
    return f"{number(low, digits)} – {number(high, digits)}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    """A GitHub table; align holds one letter per column, l(eft) or r(ight)."""
    rule = ["---:" if side == "r" else "---" for side in align]
    return [f"| {' | '.join(header)} |", f"| {' | '.join(rule)} |", *(f"| {' | '.join(row)} |" for row in rows)]


def _count(value: Any) -> str:
    return f"{int(value):,}"


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


# --- the tables ---------------------------------------------------------------------------------

def _value_or_note(metrics, key: str) -> Any:
    """The metric, or the evaluator's note on why it has no value (e.g. TPR at 1 % FPR on 60 real images)."""
    value = metrics[key]
    return metrics.get(NOTES.get(key, ""), value) if value is None else value


def metrics_table(outputs: PipelineOutputs) -> list[str]:
    scores = outputs.scores()
    summary = outputs.read_json("split_summary")
    test = [row for row in outputs.read_csv("predictions") if row["split"] == "test"]
    metrics = scores.metrics
    has_intervals = any(key.endswith("_ci_low") for key in metrics)
    rows = [[label, number(_value_or_note(metrics, key), digits),
             interval(metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high"), digits)]
            for label, key, digits in METRIC_ROWS if key in metrics]
    rows += [["decision threshold (calibrated P(fake))", number(scores.rule.threshold, RANKING_DIGITS), ""],
             ["temperature", number(scores.rule.temperature), ""]]
    if "total_parameters" in metrics:
        rows.append(["parameters", _count(metrics["total_parameters"]), ""])
    splits = ", ".join(f"{summary[split]['total']} {split}" for split in ("train", "val", "test"))
    intervals = ("95 % stratified bootstrap intervals" if has_intervals
                 else "no bootstrap intervals (`evaluate.bootstrap` is 0)")
    return [f"{summary['total']} images after validation ({summary['quarantined']} quarantined): {splits}. "
            f"Test metrics on the {_count(scores.n_test)} held-out test images ({summary['test']['fake']} fake, "
            f"{summary['test']['real']} real), with {intervals}:", "",
            *markdown_table([f"metric (test split, {_count(scores.n_test)} images)", "value", "95 % interval"],
                            rows, "lrr"),
            "", _errors_sentence(test, scores.rule.threshold)]


def _errors_sentence(test: list[dict[str, str]], threshold: float) -> str:
    labels = [int(row["label"]) for row in test]
    predicted = [int(row["predicted"]) for row in test]
    missed = sum(label == FAKE and guess == REAL for label, guess in zip(labels, predicted, strict=True))
    false_alarms = sum(label == REAL and guess == FAKE for label, guess in zip(labels, predicted, strict=True))
    return (f"At the decision threshold {number(threshold, RANKING_DIGITS)}, {missed} of {labels.count(FAKE)} "
            f"test fakes {_is_or_are(missed)} called real and {false_alarms} of {labels.count(REAL)} test reals "
            f"{_is_or_are(false_alarms)} called fake.")


def _is_or_are(count: int) -> str:
    return "is" if count == 1 else "are"


def training_table(outputs: PipelineOutputs) -> list[str]:
    """One sentence, not a table: a run may have dozens of epochs."""
    history = outputs.read_csv("history")
    if not history:
        output = outputs.files["history"]
        raise ResultsError(f"{output.path}: lists no epoch; {output.how_to_make}")
    val_auc = [_float(row.get("val_auc")) for row in history]
    by_phase: dict[str, list[str]] = {}
    for row, auc in zip(history, val_auc, strict=True):
        by_phase.setdefault(row.get("phase") or "", []).append(number(auc, RANKING_DIGITS))
    per_epoch = "; ".join(f"`{phase}` {', '.join(values)}" if phase else ", ".join(values)
                          for phase, values in by_phase.items())
    finite = [auc for auc in val_auc if auc is not None and math.isfinite(auc)]
    if not finite:
        return [f"{len(history)} epochs; no epoch has a validation AUC."]
    best = val_auc.index(max(finite))
    return [f"{len(history)} epochs; validation AUC after each: {per_epoch}. The best, "
            f"{number(val_auc[best], RANKING_DIGITS)}, came at epoch {int(history[best]['epoch']) + 1}."]


def robustness_table(outputs: PipelineOutputs) -> list[str]:
    # The perturbation catalogue knows which way each severity gets harsher; it lives with the
    # TensorFlow ops, so TensorFlow is imported only when this table is made.
    from deepfake_detector.components.data.perturbations import get_perturbation

    robustness = outputs.read_json("robustness")
    rows = []
    for name, by_severity in robustness.items():
        if name == CLEAN:
            continue
        try:
            perturbation = get_perturbation(name)
        except ValueError as error:
            raise ResultsError(f"{outputs.files['robustness'].path}: {error}") from None
        keys = {float(severity): severity for severity in by_severity}
        ordered = [keys[severity] for severity in perturbation.mild_to_harsh(keys)]
        rows.append([f"`{name}` {perturbation.severity_label} {' / '.join(ordered)}",
                     *(number(by_severity[severity]["roc_auc"], RANKING_DIGITS) for severity in ordered)])
    levels = max((len(row) - 1 for row in rows), default=0)
    rows = [row + [""] * (levels + 1 - len(row)) for row in rows]
    header = ["perturbation and severities, mild to harsh",
              *("ROC AUC" if levels == 1 else "mild" if level == 0 else "harsh" if level == levels - 1 else ""
                for level in range(levels))]
    return [f"ROC AUC of the test split after each perturbation (clean: "
            f"{number(robustness[CLEAN]['roc_auc'], RANKING_DIGITS)}):", "",
            *markdown_table(header, rows, "l" + "r" * levels)]


# (cross_dataset.json key, digits) of the cross-dataset table's metrics, each followed by its interval.
CROSS_DATASET_METRICS = (("roc_auc", RANKING_DIGITS), ("accuracy", RATE_DIGITS), ("eer", RATE_DIGITS))


def cross_dataset_table(outputs: PipelineOutputs) -> list[str]:
    results = outputs.read_json("cross_dataset")
    reference, sets, summary = results.get("reference"), results.get("sets") or [], results.get("summary")
    entries = ([(reference["name"], {"seen": True, **reference})] if reference else [])
    entries += [(f"`{row['name']}`", row) for row in sets]
    rows = [[name, str(row.get("source") or ""), _seen(row.get("seen")), _images(row), *_with_intervals(row, "")]
            for name, row in entries]
    sentences = [f"`{row['name']}`: {row['note']}." for row in sets if row.get("note")]
    has_mean = bool(summary and summary.get("n_sets"))
    if has_mean:
        rows.append([f"**mean over unseen families** ({summary['n_sets']})", "", "no", "",
                     *_with_intervals(summary, "mean_")])
        sentences.append(f"Lowest ROC AUC on an unseen family: {number(summary['min_roc_auc'], RANKING_DIGITS)} "
                         f"(`{summary['min_roc_auc_set']}`); lowest accuracy: {number(summary['min_accuracy'])} "
                         f"(`{summary['min_accuracy_set']}`).")
    elif summary is not None and sets:
        sentences.append("No set from a source unseen in training holds both classes, so there is no mean over "
                         "unseen families.")
    if sets:
        has_intervals = any(row.get("roc_auc_ci_low") is not None for row in sets)
        lead = ("Each set of `evaluate.extra_sets`, scored at the evaluate stage's decision threshold, below the "
                "in-distribution test split, "
                + ("with 95 % stratified bootstrap intervals" if has_intervals
                   else "without bootstrap intervals (`evaluate.bootstrap` is 0)")
                + ("; the last row averages the sets from sources training did not see (one bootstrap redrawing "
                   "all of them)" if has_mean else "") + ":")
    else:
        lead = "No other data sets are scored (`evaluate.extra_sets` is empty); the in-distribution test split:"
    header = ["set", "source", "seen in training", "images",
              *(heading for label in ("ROC AUC", "accuracy", "EER") for heading in (label, "95 % interval"))]
    return [lead, "", *markdown_table(header, rows, "lllr" + "rr" * len(CROSS_DATASET_METRICS)),
            *(["", *sentences] if sentences else [])]


def _with_intervals(row: Mapping[str, Any], prefix: str) -> list[str]:
    """Each cross-dataset metric of row (keys prefix + metric), then its interval; a summary has no EER."""
    return [cell for key, digits in CROSS_DATASET_METRICS
            for cell in (number(row.get(f"{prefix}{key}"), digits) if f"{prefix}{key}" in row else "",
                         interval(row.get(f"{prefix}{key}_ci_low"), row.get(f"{prefix}{key}_ci_high"), digits))]


def _seen(seen: Any) -> str:
    return NOT_AVAILABLE if seen is None else "yes" if seen else "no"


def _images(row: Mapping[str, Any]) -> str:
    if row.get("n_fake") is None or row.get("n_real") is None:
        return _count(row["n"])
    return f"{_count(row['n'])} ({row['n_fake']} fake, {row['n_real']} real)"


def shortcut_audit_table(outputs: PipelineOutputs) -> list[str]:
    audit = outputs.read_json("shortcut_audit")
    warn_auc = number(audit["warn_auc"], 2)
    named_flagged = set(audit.get("flagged") or [])
    rows, flagged = [], []
    for name, cue in audit["cues"].items():
        auc = number(cue.get("auc"), RANKING_DIGITS)
        if cue.get("flagged") or name in named_flagged:
            flagged.append(f"`{name}` ({auc})")
            rows.append([f"`{name}`", f"**{auc}**", "**flagged**"])
        else:
            rows.append([f"`{name}`", auc, ""])
    verdict = (f"Flagged: {', '.join(flagged)}." if flagged else f"No cue reaches {warn_auc}.")
    return [f"Each cue alone, cross-validated over {audit['folds']} folds of the {_count(audit['n_images'])} train "
            f"images ({audit['n_fake']} fake, {audit['n_real']} real); a cue whose ROC AUC reaches {warn_auc} "
            "is flagged:", "", *markdown_table(["cue", "ROC AUC alone", ""], rows, "lrl"), "", verdict]


def export_table(outputs: PipelineOutputs) -> list[str]:
    exports = outputs.read_json("export_metrics")
    rows = [[f"`{variant}`", f"`{entry['file']}`", f"{entry['bytes'] / 1e6:.2f}", f"{entry['max_abs_diff']:.1e}",
             f"{100 * entry['decision_agreement']:.1f} %", number(entry["roc_auc"], RANKING_DIGITS),
             number(entry["accuracy"])] for variant, entry in exports.items()]
    return ["Each export, scored on the test split through the serving runtime and compared with the Keras "
            "model it came from:", "",
            *markdown_table(["variant", "file", "size (MB)", "max difference in P(fake)", "same verdict as Keras",
                             "test ROC AUC", "test accuracy"], rows, "llrrrrr")]


TABLES: tuple[Table, ...] = (
    Table("metrics", ("scores", "split_summary", "predictions"), metrics_table),
    Table("training", ("history",), training_table),
    Table("robustness", ("robustness",), robustness_table),
    Table("cross-dataset", ("cross_dataset",), cross_dataset_table),
    Table("shortcut-audit", ("shortcut_audit",), shortcut_audit_table),
    Table("export", ("export_metrics",), export_table),
)
