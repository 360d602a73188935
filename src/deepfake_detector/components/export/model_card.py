"""The model card: what the exported model is, how to feed it, how good it is and where it came from.

One JSON document (read by the serving app for /api/v1/model and by `load_predictor` to match
exports to their source model) and the same facts rendered as Markdown for people.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from deepfake_detector import __version__
from deepfake_detector.contracts.labels import CLASS_NAMES, FAKE, REAL

CARD_SCHEMA_VERSION = 1

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


def build_model_card(*, params: Mapping[str, Any], image_size: int, total_parameters: int,
                     threshold: float, temperature: float = 1.0, test_metrics: Mapping[str, Any],
                     exports: Mapping[str, Mapping[str, Any]],
                     source: Mapping[str, Any], dataset: Mapping[str, Any],
                     git: Mapping[str, Any]) -> dict[str, Any]:
    """Assemble the card from facts the export stage measured; nothing here is computed anew."""
    model = params.get("model", {})
    return {
        "schema_version": CARD_SCHEMA_VERSION,
        "name": "deepfake-detector",
        "package_version": __version__,
        "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "git": dict(git),
        "architecture": {
            "summary": (f"MobileNetV2 (alpha {model.get('alpha')}) + GlobalAveragePooling2D + "
                        f"Dropout({model.get('dropout')}) + Dense(1, sigmoid)"),
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
            "resize": f"decode to RGB, then bilinear resize with antialiasing to {image_size}x{image_size}",
            "preprocessing": "inside the model (scaling to [-1, 1]); feed raw pixel values",
        },
        "output": {
            "name": "p_fake",
            "shape": [None, 1],
            "meaning": "probability that the image is fake (positive class)",
            "classes": {str(FAKE): CLASS_NAMES[FAKE], str(REAL): CLASS_NAMES[REAL]},
            "threshold": float(threshold),
            "threshold_rule": str(params.get("evaluate", {}).get("threshold")),
            # Temperature scaling fitted on val: P(fake) = sigmoid(logit(model output) / temperature).
            # The threshold applies to that calibrated P(fake); 1.0 means uncalibrated.
            "temperature": float(temperature),
        },
        "test_metrics": dict(test_metrics),
        "exports": {name: dict(entry) for name, entry in exports.items()},
        "source": dict(source),
        "dataset": dict(dataset),
        "params": dict(params),
        "intended_use": INTENDED_USE,
        "limitations": list(LIMITATIONS),
    }


def _number(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 10 ** -digits or value == 0 else f"{value:.1e}"
    return "n/a" if value is None else str(value)


def render_markdown(card: Mapping[str, Any]) -> str:
    """The card as a page a reviewer reads top to bottom."""
    arch, inp, out = card["architecture"], card["input"], card["output"]
    metrics, dataset, git = card["test_metrics"], card["dataset"], card["git"]
    lines = [
        f"# Model card: {card['name']}",
        "",
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
        f"- Calibration: temperature {out.get('temperature', 1.0):.3f} fitted on the validation split; "
        "P(fake) = sigmoid(logit(model output) / temperature). Serving applies it.",
        f"- Decision threshold: {out['threshold']:.4f} on the calibrated P(fake) (rule `{out['threshold_rule']}`, "
        "chosen on the validation split); P(fake) at or above it means fake.",
        "",
        "## Test metrics (held-out test split, Keras model, 95 % stratified bootstrap intervals)",
        "| metric | value | 95 % interval |",
        "| --- | --- | --- |",
    ]
    for name in ("accuracy", "balanced_accuracy", "roc_auc", "eer", "average_precision", "precision", "recall",
                 "f1", "ece", "ece_uncalibrated", "n_test"):
        if name in metrics:
            low, high = metrics.get(f"{name}_ci_low"), metrics.get(f"{name}_ci_high")
            interval = f"{_number(low)} – {_number(high)}" if low is not None and high is not None else ""
            lines.append(f"| {name} | {_number(metrics[name])} | {interval} |")
    lines += [
        "",
        "## Exports",
        "| variant | file | size (MB) | max abs diff vs Keras | accuracy | ROC AUC | AUC drop | EER |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, entry in card["exports"].items():
        lines.append(f"| {name} | `{entry['file']}` | {entry['bytes'] / 1e6:.2f} | "
                     f"{entry.get('max_abs_diff', float('nan')):.1e} | {_number(entry.get('accuracy'))} | "
                     f"{_number(entry.get('roc_auc'))} | {_number(entry.get('auc_drop'))} | "
                     f"{_number(entry.get('eer'))} |")
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
