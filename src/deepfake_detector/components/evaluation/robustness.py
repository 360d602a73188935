"""How well the detector holds up after what social networks do to images: the test images are
scored again under each perturbation of perturbations.py, and the drop in AUC is reported.

Each image is degraded at its own size, as a platform would, and only then resized for the model
exactly as training fitted it (model.input_fit). `RobustnessEvaluator` is the robustness stage's component.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from deepfake_detector.components.data.datasets import (
    decode_native,
    fit_tensor_for_model,
    read_manifest,
    split_rows,
)
from deepfake_detector.components.data.perturbations import apply_perturbation, get_perturbation
from deepfake_detector.components.evaluation.metrics import compute_scores
from deepfake_detector.config.entities import RobustnessConfig
from deepfake_detector.contracts.scores import read_scores
from deepfake_detector.inference.keras_model import load_keras_model
from deepfake_detector.utils.files import atomic_path, write_json_atomic

logger = logging.getLogger(__name__)

CLEAN = "none"
SCORE_COLUMNS = ("roc_auc", "accuracy", "eer")
COLUMNS = ("perturbation", "severity", *SCORE_COLUMNS, "n")
# compute_scores needs a bin count for its calibration error, which this table does not report.
CALIBRATION_BINS = 10
PANEL_COLUMNS = 3
DPI = 120
SCORED_SPLIT = "test"


@dataclass(frozen=True)
class RobustnessResult:
    table: pd.DataFrame                # one row per condition (see score_under_perturbations)
    metrics_file: Path
    plot_file: Path
    png_file: Path

    @property
    def roc_auc_by_condition(self) -> dict[str, float]:
        """ROC AUC per condition named "none" (clean) or e.g. "jpeg_50", in table order."""
        return {condition_name(row.perturbation, row.severity): float(row.roc_auc) for row in self.table.itertuples()}

    @property
    def files(self) -> tuple[Path, ...]:
        return self.metrics_file, self.plot_file, self.png_file


class RobustnessEvaluator:
    """The robustness stage: the test split scored under every perturbation at every severity, at
    the raw-output threshold the evaluate stage fixed, written for dvc and the report."""

    def __init__(self, config: RobustnessConfig) -> None:
        self.config = config

    def run(self) -> RobustnessResult:
        config = self.config
        model = load_keras_model(config.model_file, config.image_size)
        rule = read_scores(config.scores_file).require_model(config.model_file).rule
        paths, labels = split_rows(read_manifest(config.manifest_file), SCORED_SPLIT, config.dataset_dir)
        table = score_under_perturbations(model, paths, labels, image_size=config.image_size,
                                          input_fit=config.input_fit, batch_size=config.batch_size,
                                          severities=config.severities,
                                          threshold=rule.raw_threshold, seed=config.seed)
        write_robustness_outputs(table, config.metrics_file, config.plot_file, config.png_file)
        return RobustnessResult(table=table, metrics_file=config.metrics_file, plot_file=config.plot_file,
                                png_file=config.png_file)


def condition_name(perturbation: str, severity: float | None) -> str:
    """"jpeg_50" for a perturbed condition, "none" for the clean images (severity None)."""
    return perturbation if severity is None else f"{perturbation}_{severity:g}"


def perturbed_dataset(paths: Sequence[str], *, image_size: int, input_fit: str, batch_size: int, perturbation: str,
                      severity: float | None, seed: int):
    """Batches of model inputs: each image decoded at its own size, perturbed (perturbation "none"
    leaves it alone), then fitted to the model's input (model.input_fit). Image i's noise uses the
    stateless seed (seed, i), so every run and every severity draws the same noise pattern for the
    same image."""
    def load(path, index):
        image = decode_native(path)
        if perturbation != CLEAN:
            image = apply_perturbation(perturbation, image, severity,
                                       seed=tf.stack([tf.constant(seed, tf.int64), index]))
        return fit_tensor_for_model(image, image_size, input_fit)

    dataset = tf.data.Dataset.from_tensor_slices((list(paths), tf.range(len(paths), dtype=tf.int64)))
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _conditions(severities: Mapping[str, Sequence[float]]) -> list[tuple[str, float | None]]:
    """("none", None) then every (perturbation, severity), each checked before any image is read."""
    conditions: list[tuple[str, float | None]] = [(CLEAN, None)]
    for name, values in severities.items():
        perturbation = get_perturbation(name)
        conditions.extend((name, perturbation.check(value)) for value in values)
    return conditions


def score_under_perturbations(model, paths: Sequence[str], labels: Sequence[int], *, image_size: int,
                              input_fit: str, batch_size: int, severities: Mapping[str, Sequence[float]],
                              threshold: float, seed: int) -> pd.DataFrame:
    """One row per condition, the clean images first (perturbation "none", severity None), then
    each (perturbation, severity) in the order given; columns perturbation, severity, roc_auc,
    accuracy (P(fake) >= threshold is called fake), eer and n. Deterministic for a given seed."""
    if not paths:
        raise ValueError("no images to score for robustness")
    if len(paths) != len(labels):
        raise ValueError(f"{len(paths)} image paths but {len(labels)} labels")
    conditions = _conditions(severities)
    rows = []
    for number, (name, severity) in enumerate(conditions, start=1):
        dataset = perturbed_dataset(paths, image_size=image_size, input_fit=input_fit, batch_size=batch_size,
                                    perturbation=name,
                                    severity=severity, seed=seed)
        probs = np.asarray(model.predict(dataset, verbose=0), dtype=np.float64).ravel()
        scores = compute_scores(labels, probs, threshold, CALIBRATION_BINS)
        rows.append({"perturbation": name, "severity": severity,
                     **{column: scores[column] for column in SCORE_COLUMNS}, "n": len(paths)})
        logger.info("Robustness %d/%d: %s%s: AUC %.4f", number, len(conditions), name,
                    "" if severity is None else f" at {severity:g}", scores["roc_auc"])
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    # Object dtype keeps the clean row's severity None; a float column would turn it into NaN.
    table["severity"] = pd.Series([row["severity"] for row in rows], dtype=object)
    return table


def _severity_key(severity: float) -> str:
    return f"{severity:g}"


def _scores(row: Mapping[str, Any]) -> dict[str, float]:
    return {column: float(row[column]) for column in SCORE_COLUMNS}


def robustness_metrics(table: pd.DataFrame) -> dict[str, Any]:
    """{"clean": {roc_auc, accuracy, eer}, "<perturbation>": {"<severity>": {...}}} for dvc metrics;
    severities are keyed as short numbers ("90", "0.5")."""
    clean = table[table["perturbation"] == CLEAN]
    if len(clean) != 1:
        raise ValueError(f"the robustness table needs exactly one {CLEAN!r} row, found {len(clean)}")
    metrics: dict[str, Any] = {"clean": _scores(clean.iloc[0])}
    for row in table[table["perturbation"] != CLEAN].to_dict("records"):
        metrics.setdefault(row["perturbation"], {})[_severity_key(row["severity"])] = _scores(row)
    return metrics


def robustness_plot_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """ROC AUC by severity level, one record per level (1 = mildest) and one field per perturbation,
    so a DVC plot draws one line per perturbation on a common mild-to-harsh axis although their
    severities are in different units. A perturbation with fewer levels has null at the others."""
    perturbed = table[table["perturbation"] != CLEAN]
    names = list(dict.fromkeys(perturbed["perturbation"]))
    by_level: dict[int, dict[str, Any]] = {}
    for name in names:
        rows = perturbed[perturbed["perturbation"] == name]
        auc_by_severity = dict(zip(rows["severity"], rows["roc_auc"], strict=True))
        for level, severity in enumerate(get_perturbation(name).mild_to_harsh(auc_by_severity), start=1):
            by_level.setdefault(level, {"severity_level": level})[name] = float(auc_by_severity[severity])
    return [{"severity_level": level, **dict.fromkeys(names), **by_level[level]} for level in sorted(by_level)]


def render_robustness(path: Path, table: pd.DataFrame) -> Path:
    """One small panel per perturbation: AUC against severity from mild (left) to harsh (right),
    the clean AUC dashed and chance dotted."""
    clean_auc = robustness_metrics(table)["clean"]["roc_auc"]
    names = list(dict.fromkeys(table.loc[table["perturbation"] != CLEAN, "perturbation"]))
    columns = max(1, min(PANEL_COLUMNS, len(names)))
    rows = max(1, math.ceil(len(names) / columns))
    figure = Figure(figsize=(3.4 * columns, 2.9 * rows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    panels = figure.subplots(rows, columns, squeeze=False).ravel()
    for axes, name in zip(panels[:len(names)], names, strict=True):
        perturbation = get_perturbation(name)
        auc_by_severity = dict(table.loc[table["perturbation"] == name, ["severity", "roc_auc"]]
                               .itertuples(index=False, name=None))
        ordered = perturbation.mild_to_harsh(auc_by_severity)
        axes.plot(ordered, [auc_by_severity[s] for s in ordered], marker="o", color="tab:red", lw=2)
        if perturbation.harsher_when_lower:
            axes.invert_xaxis()
        axes.axhline(clean_auc, color="black", ls="--", lw=1, label=f"clean ({clean_auc:.3f})")
        axes.axhline(0.5, color="gray", ls=":", lw=1, label="chance")
        axes.set(title=name, xlabel=perturbation.severity_label, ylabel="ROC AUC", ylim=(0.0, 1.02))
        axes.grid(alpha=0.3)
        axes.legend(loc="lower left", fontsize="small")
    for axes in panels[len(names):]:
        axes.set_visible(False)
    figure.suptitle("Detector AUC under perturbations (mild to harsh)")
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI)
    return Path(path)


def write_robustness_outputs(table: pd.DataFrame, metrics_file: Path, plot_file: Path, png_file: Path) -> None:
    """Write the metrics JSON, the plot records JSON and the PNG panels for one robustness table."""
    write_json_atomic(metrics_file, robustness_metrics(table))
    write_json_atomic(plot_file, robustness_plot_records(table))
    render_robustness(png_file, table)
    logger.info("Wrote robustness results to %s, %s and %s", metrics_file, plot_file, png_file)
