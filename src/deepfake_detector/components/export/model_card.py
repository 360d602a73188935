"""The model card: what the exported model is, how to feed it, how good it is and where it came from.

One JSON document (read by the serving app for /api/v1/model and by `load_predictor` to match
exports to their source model) and the same facts rendered as Markdown for people.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from deepfake_detector import __version__
from deepfake_detector.components.evaluation.calibration import CALIBRATION_OFF, FITTED, VAL_SEPARATED
from deepfake_detector.components.evaluation.learning import LearningCheck
from deepfake_detector.contracts.decision_rule import DecisionRule
from deepfake_detector.contracts.input_fit import LEGACY_INPUT_FIT
from deepfake_detector.contracts.labels import CLASS_NAMES, FAKE, REAL
from deepfake_detector.contracts.layers import OUTPUT_NAME

CARD_SCHEMA_VERSION = 1
# scores.json keys that say how the evaluate stage set its rule; the card says it in words.
RULE_ORIGIN_KEYS = ("threshold_rule", "temperature_status")
CHOSEN_RULES = {"eer": "the equal error rate", "youden": "Youden's J"}
GIVEN_RULE = "given"
NOT_RECORDED = "not recorded in scores.json; rerun the evaluate stage"
# scores.json's `video` block keys the card's `video` block carries as they are; the rest are its test_metrics.
VIDEO_RULE_KEYS = ("aggregation", "threshold", "threshold_rule", "chosen_on")
VIDEO_COUNT_KEYS = ("n_val_videos", "n_test_videos", "frames_per_video", "frame_intervals")
VIDEO_TEST_ROWS = ("roc_auc", "accuracy", "balanced_accuracy", "eer", "f1", "average_precision")
AGGREGATION_WORDS = {"mean": "the mean of its frames' calibrated P(fake)",
                     "median": "the median of its frames' calibrated P(fake)",
                     "max": "its most fake frame's calibrated P(fake)",
                     "top_k_mean": "the mean of its most fake quarter of frames (calibrated P(fake))"}
TEST_METRIC_ROWS = ("accuracy", "balanced_accuracy", "roc_auc", "eer", "average_precision", "precision", "recall",
                    "f1", "tpr_at_fpr_1pct", "ece_top_label", "ece_positive_class", "ece_top_label_uncalibrated",
                    "ece_positive_class_uncalibrated", "n_test")

INTENDED_USE = (
    "Screening single, roughly frontal face crops for signs of GAN synthesis (StyleGAN-style "
    "upsampling artifacts), as one signal among others for a human reviewer."
)
LIMITATIONS = [
    "Trained on one dataset; accuracy on other generators (diffusion models, face swaps, "
    "re-enactment) and on other cameras or compression pipelines is unknown until measured.",
    "Heavy re-compression, resizing or filtering can erase the artifacts the model relies on.",
    "The score is a probability under the training distribution; recalibrate the threshold "
    "for a new population before acting on it.",
    "Not for decisions about individuals without human review; not a biometric or identity tool.",
]


# What model.representation puts in front of the backbone, as the card states it.
REPRESENTATION_SUMMARY = {"npr": "neighbouring-pixel residual (x - up(down(x))) + "}
REPRESENTATION_PREPROCESSING = {"npr": "each pixel minus its 2x2 cell's corner, centered on 128, then "}


def fit_sentence(fit: str, image_size: int) -> str:
    """How model.input_fit turns a decoded image into the model's input, as the card states it."""
    resize = f"bilinear resize with antialiasing to {image_size}x{image_size}"
    if fit == "crop":
        return (f"decode to RGB; at least {image_size} px on each side: the center {image_size}x{image_size} crop "
                f"at the image's own resolution, no resampling; smaller: {resize}")
    return f"decode to RGB, then {resize}"


def build_model_card(*, params: Mapping[str, Any], image_size: int, total_parameters: int,
                     rule: DecisionRule, rule_origin: Mapping[str, Any], test_metrics: Mapping[str, Any],
                     learning: LearningCheck | None, exports: Mapping[str, Mapping[str, Any]],
                     source: Mapping[str, Any], dataset: Mapping[str, Any],
                     git: Mapping[str, Any], video: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Assemble the card from facts the evaluate and export stages measured; nothing here is computed anew.

    rule_origin holds scores.json's RULE_ORIGIN_KEYS (None where an older file lacks them); learning is
    the evaluate stage's validation check (None for older files), whose warning heads the card. video is
    scores.json's `video` block (None for still images): the card's `video` states the aggregation rule and
    threshold chosen on the val videos, which serve.video_aggregation auto serves.
    """
    model = params.get("model", {})
    return {
        "schema_version": CARD_SCHEMA_VERSION,
        "name": "deepfake-detector",
        "package_version": __version__,
        "created": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "git": dict(git),
        "architecture": {
            "summary": (f"{REPRESENTATION_SUMMARY.get(model.get('representation'), '')}MobileNetV2 (alpha "
                        f"{model.get('alpha')}) + GlobalAveragePooling2D + Dropout({model.get('dropout')}) + "
                        "Dense(1, sigmoid)"),
            "representation": model.get("representation"),
            "backbone": "MobileNetV2",
            "alpha": model.get("alpha"),
            "initial_weights": model.get("weights"),
            "total_parameters": int(total_parameters),
        },
        "input": {
            "shape": [None, image_size, image_size, 3],
            "layout": "NHWC",
            "dtype": "float32",
            "channel_order": "RGB",
            "value_range": [0.0, 255.0],
            "fit": model.get("input_fit", LEGACY_INPUT_FIT),
            "resize": fit_sentence(model.get("input_fit", LEGACY_INPUT_FIT), image_size),
            # The faces stage's crop settings when the model trained on face crops (serve.face_detector auto reads
            # them), else None: the model trained on whole images.
            "faces": _face_settings(params.get("data", {}).get("faces")),
            "preprocessing": (f"inside the model ({REPRESENTATION_PREPROCESSING.get(model.get('representation'), '')}"
                              "scaling to [-1, 1]); feed raw pixel values"),
        },
        "output": {
            "name": OUTPUT_NAME,
            "shape": [None, 1],
            "meaning": "probability that the image is fake (positive class)",
            "classes": {str(FAKE): CLASS_NAMES[FAKE], str(REAL): CLASS_NAMES[REAL]},
            "threshold": rule.threshold,
            # eer or youden: chosen on the validation split; given: the number in evaluate.threshold.
            "threshold_rule": rule_origin.get("threshold_rule"),
            # P(fake) = sigmoid(logit(model output) / temperature); the threshold applies to that calibrated
            # P(fake). temperature_status: fitted on val, val_separated (kept at 1.0), or off.
            "temperature": rule.temperature,
            "temperature_status": rule_origin.get("temperature_status"),
        },
        "video": video_rule(video),
        "validation": None if learning is None else {
            "roc_auc": learning.roc_auc, "roc_auc_ci_low": learning.ci_low, "roc_auc_ci_high": learning.ci_high,
            "n": learning.n, "above_chance": learning.is_above_chance},
        "warnings": [] if learning is None or learning.is_above_chance else [learning.warning()],
        "test_metrics": dict(test_metrics),
        "exports": {name: dict(entry) for name, entry in exports.items()},
        "source": dict(source),
        "dataset": dict(dataset),
        "params": dict(params),
        "intended_use": INTENDED_USE,
        "limitations": list(LIMITATIONS),
    }


def video_rule(video: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The card's `video` block from scores.json's: the rule and threshold as serving reads them, each rule's
    val ROC AUC, the counts, and the test videos' metrics; None when the model was evaluated on still images."""
    if not video:
        return None
    block = {key: video.get(key) for key in VIDEO_RULE_KEYS}
    block["val_roc_auc"] = dict(video.get("aggregation_val_roc_auc") or {})
    block.update({key: video.get(key) for key in VIDEO_COUNT_KEYS})
    known = {*VIDEO_RULE_KEYS, *VIDEO_COUNT_KEYS, "aggregation_val_roc_auc"}
    block["test_metrics"] = {key: value for key, value in video.items() if key not in known}
    return block


def _face_settings(faces: Any) -> dict[str, Any] | None:
    if not isinstance(faces, Mapping) or not faces.get("enabled"):
        return None
    return {key: faces.get(key) for key in ("detector", "crop", "margin", "min_size")}


def _number(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 10 ** -digits or value == 0 else f"{value:.1e}"
    return "n/a" if value is None else str(value)


def calibration_sentence(temperature: float, status: str | None) -> str:
    """What became of the temperature, as it happened."""
    formula = "P(fake) = sigmoid(logit(model output) / temperature), which serving applies"
    if status == FITTED:
        return f"temperature {temperature:.3f}, fitted on the validation split; {formula}."
    if status == VAL_SEPARATED:
        return ("none: temperature 1.0, not fitted, because the model separates the validation split perfectly "
                "(no finite temperature fits it); P(fake) is the model's own output.")
    if status == CALIBRATION_OFF:
        return "off (evaluate.calibrate is false): temperature 1.0; P(fake) is the model's own output."
    return f"temperature {temperature:.3f} ({formula}); how it was set is {NOT_RECORDED}."


def threshold_sentence(threshold: float, rule: str | None) -> str:
    """Where the threshold came from, as it happened: chosen on validation only when it was."""
    if rule in CHOSEN_RULES:
        how = (f"chosen on the validation split by {CHOSEN_RULES[rule]} (rule `{rule}`), in the middle of the "
               "thresholds that give the best operating point there")
    elif rule == GIVEN_RULE:
        how = "given in params.yaml (`evaluate.threshold`), not chosen on data"
    else:
        how = f"how it was chosen is {NOT_RECORDED}"
    return f"{threshold:.4f} on the calibrated P(fake), {how}; P(fake) at or above it means fake."


def video_sentence(video: Mapping[str, Any]) -> str:
    """How a video's verdict is made, as evaluate chose it: the rule in words and where the threshold came from."""
    rule = video["aggregation"]
    aucs = ", ".join(f"{name} {_number(auc)}" for name, auc in (video.get("val_roc_auc") or {}).items())
    threshold_rule = video.get("threshold_rule")
    if threshold_rule in CHOSEN_RULES:
        how = f"chosen on the validation videos by {CHOSEN_RULES[threshold_rule]}"
    elif threshold_rule == GIVEN_RULE:
        how = "given in params.yaml (`evaluate.threshold`), as for images"
    else:
        how = f"how it was chosen is {NOT_RECORDED}"
    return (f"a video's P(fake) is {AGGREGATION_WORDS.get(rule, rule)} (rule `{rule}`), the rule with the highest "
            f"ROC AUC on the {video.get('n_val_videos')} validation videos ({aucs}); a video is fake at "
            f"{video['threshold']:.4f} or above, {how}. `serve.video_aggregation: auto` serves this rule and "
            "threshold.")


def _video_lines(video: Mapping[str, Any] | None) -> list[str]:
    if not video:
        return []
    metrics = video.get("test_metrics") or {}
    rows = []
    for name in VIDEO_TEST_ROWS:
        if name in metrics:
            low, high = metrics.get(f"{name}_ci_low"), metrics.get(f"{name}_ci_high")
            interval = f"{_number(low)} – {_number(high)}" if low is not None and high is not None else ""
            rows.append(f"| {name} | {_metric_value(metrics, name)} | {interval} |")
    return [
        "## Videos",
        f"- Verdict: {video_sentence(video)}",
        f"- Test: {video.get('n_test_videos')} videos, median {_number(video.get('frames_per_video'), 1)} frames "
        "each; the frame-level intervals above resample whole videos (frames of one video are not independent).",
        "",
        "| metric (per test video) | value | 95 % interval |",
        "| --- | --- | --- |",
        *rows,
        "",
    ]


def _metric_value(metrics: Mapping[str, Any], name: str) -> str:
    note = metrics.get(f"{name}_note")
    return note if metrics.get(name) is None and isinstance(note, str) else _number(metrics[name])


def _validation_lines(validation: Mapping[str, Any] | None) -> list[str]:
    if validation is None:
        return [f"- Whether the model learned is {NOT_RECORDED}."]
    verdict = "above chance" if validation["above_chance"] else "**not above chance (0.5)**"
    return [f"- Validation ROC AUC {validation['roc_auc']:.4f} (95 % stratified bootstrap interval "
            f"{validation['roc_auc_ci_low']:.4f} – {validation['roc_auc_ci_high']:.4f}, {validation['n']} images): "
            f"{verdict}."]


def render_markdown(card: Mapping[str, Any]) -> str:
    """The card as a page a reviewer reads top to bottom; a model that did not learn says so first."""
    arch, inp, out = card["architecture"], card["input"], card["output"]
    metrics, dataset, git, video = card["test_metrics"], card["dataset"], card["git"], card.get("video")
    lines = [f"# Model card: {card['name']}", ""]
    for warning in card.get("warnings", []):
        lines += [f"> **Warning:** {warning}", ""]
    lines += [
        f"Created {card['created']} from commit `{git.get('commit') or 'unknown'}`"
        + (" (with uncommitted changes)" if git.get("dirty") else "")
        + f", package version {card['package_version']}.",
        "",
        "## Model",
        f"- Architecture: {arch['summary']}, {arch['total_parameters']:,} parameters.",
        f"- Initial backbone weights: {arch['initial_weights']}.",
        f"- Source model: `{card['source']['file']}` (sha256 `{card['source']['sha256'][:16]}…`).",
        "",
        "## Input and output",
        f"- Input: {inp['dtype']} tensor {inp['shape']} ({inp['layout']}), {inp['channel_order']} pixel values "
        f"in [{inp['value_range'][0]:g}, {inp['value_range'][1]:g}].",
        f"- Resize: {inp['resize']}. Preprocessing: {inp['preprocessing']}.",
        f"- Output `{out['name']}`: {out['meaning']}; classes {out['classes']}.",
        f"- Calibration: {calibration_sentence(out['temperature'], out.get('temperature_status'))}",
        f"- Decision threshold: {threshold_sentence(out['threshold'], out.get('threshold_rule'))}",
        "",
        "## Did it learn? (validation split)",
        *_validation_lines(card.get("validation")),
        "",
        f"## Test metrics{' per frame' if video else ''} (held-out test split, Keras model, 95 % stratified "
        f"bootstrap intervals{' over videos' if video else ''})",
        "| metric | value | 95 % interval |",
        "| --- | --- | --- |",
    ]
    for name in TEST_METRIC_ROWS:
        if name in metrics:
            low, high = metrics.get(f"{name}_ci_low"), metrics.get(f"{name}_ci_high")
            interval = f"{_number(low)} – {_number(high)}" if low is not None and high is not None else ""
            lines.append(f"| {name} | {_metric_value(metrics, name)} | {interval} |")
    lines += [
        "",
        *_video_lines(video),
        "## Exports",
        "The ROC AUC gate (`export.max_auc_drop`) decides on the validation split; test figures are reported only.",
        "",
        "| variant | file | size (MB) | max abs diff vs Keras | val AUC drop (gated) | test accuracy | test ROC AUC "
        "| test AUC drop | test EER |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, entry in card["exports"].items():
        lines.append(f"| {name} | `{entry['file']}` | {entry['bytes'] / 1e6:.2f} | "
                     f"{entry.get('max_abs_diff', float('nan')):.1e} | {_number(entry.get('val_auc_drop'))} | "
                     f"{_number(entry.get('accuracy'))} | {_number(entry.get('roc_auc'))} | "
                     f"{_number(entry.get('auc_drop'))} | {_number(entry.get('eer'))} |")
    counts = ", ".join(f"{split}: {n}" for split, n in dataset.get("images_per_split", {}).items())
    lines += [
        "",
        "## Data",
        f"- Source: `{dataset.get('source')}`; images per split: {counts}.",
        f"- Manifest sha256 (dataset fingerprint): `{dataset.get('manifest_sha256')}`.",
        "",
        "## Intended use",
        card["intended_use"],
        "",
        "## Limitations",
        *[f"- {item}" for item in card["limitations"]],
        "",
    ]
    return "\n".join(lines)
