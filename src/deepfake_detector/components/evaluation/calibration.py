"""Temperature scaling: one number, fitted on the validation split, that turns the detector's
over- or under-confident P(fake) into probabilities that match how often images are fake.

Dividing the logit by T > 0 is strictly increasing, so it changes the probabilities but never
the ranking: ROC AUC, EER and average precision stay the same, and so do the decisions once the
threshold goes through the same map (calibrate_threshold).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.optimize import minimize_scalar

from deepfake_detector.components.evaluation import metrics
from deepfake_detector.contracts import temperature as inference_temperature
from deepfake_detector.contracts.labels import FAKE
from deepfake_detector.utils.files import atomic_path, write_json_atomic

logger = logging.getLogger(__name__)

# The search runs over log T, so both over- and under-confidence are equally easy to reach.
# T from 0.05 to 20: beyond, a temperature either rounds confident scores to exactly 0 or 1 or flattens
# every score to 0.5, and neither is a calibration.
LOG_TEMPERATURE_BOUNDS = (math.log(0.05), math.log(20.0))
DPI = 120
HISTOGRAM_BINS = 20
CURVE_COLORS = {"before": "tab:red", "after": "tab:green"}

# What became of the temperature (scores.json `temperature_status`, the model card says it in words).
FITTED = "fitted"
VAL_SEPARATED = "val_separated"   # no finite optimum: kept at 1.0
CALIBRATION_OFF = "off"           # evaluate.calibrate is false: 1.0


@dataclass(frozen=True)
class TemperatureFit:
    temperature: float
    status: str                   # FITTED or VAL_SEPARATED


def _checked(labels: Sequence[int], probs: Sequence[float], purpose: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        label_array, values = metrics.check_binary_inputs(labels, probs)
        metrics.check_probabilities(values)
    except ValueError as error:
        raise ValueError(f"cannot {purpose}: {error}") from error
    return label_array, values


def _mean_nll(labels: np.ndarray, logits: np.ndarray) -> float:
    # -log sigmoid(z) for fakes and -log sigmoid(-z) for reals, without overflow.
    signs = np.where(labels == FAKE, 1.0, -1.0)
    return float(np.mean(np.logaddexp(0.0, -signs * logits)))


def negative_log_likelihood(labels: Sequence[int], probs: Sequence[float]) -> float:
    """Mean binary negative log-likelihood (nats per image) of the labels under P(fake), with the
    probabilities clipped to [1e-7, 1 - 1e-7] exactly as fit_temperature clips them."""
    label_array, values = _checked(labels, probs, "compute the negative log-likelihood")
    return _mean_nll(label_array, metrics.clipped_logits(values))


def fit_temperature(labels: Sequence[int], probs: Sequence[float]) -> TemperatureFit:
    """The T > 0 that minimizes the negative log-likelihood of sigmoid(logit(p) / T) on these
    labels, which should be the validation split's: T > 1 softens an over-confident detector,
    T < 1 sharpens an under-confident one.

    A split the detector separates perfectly has no best temperature (its likelihood keeps
    improving as T shrinks towards 0, rounding every score to 0 or 1): then, and whenever the
    optimum is the smallest temperature searched, this returns 1.0 with status VAL_SEPARATED,
    leaving the model's own probabilities, and logs a warning saying so.

    Raises ValueError naming the problem when the input is empty, has one class only, or holds
    something that is not a probability.
    """
    label_array, values = _checked(labels, probs, "fit a temperature")
    logits = metrics.clipped_logits(values)
    result = minimize_scalar(lambda log_t: _mean_nll(label_array, logits / math.exp(log_t)),
                             bounds=LOG_TEMPERATURE_BOUNDS, method="bounded")
    temperature = math.exp(float(result.x))
    if result.x - LOG_TEMPERATURE_BOUNDS[0] < 1e-3:
        logger.warning("No finite temperature calibrates these %d images: the likelihood keeps improving as the "
                       "temperature falls to %.3g (the validation split is separated perfectly or nearly so). "
                       "Keeping the model's own probabilities (temperature 1.0); calibrate on a larger or "
                       "harder validation split", label_array.size, temperature)
        return TemperatureFit(1.0, VAL_SEPARATED)
    if LOG_TEMPERATURE_BOUNDS[1] - result.x < 1e-3:
        logger.warning("Temperature %.4g sits at the top of the search range: the scores carry almost no "
                       "information on this split, so calibrated probabilities sit near 0.5", temperature)
    logger.info("Fitted temperature %.4f on %d images (NLL %.4f -> %.4f)", temperature, label_array.size,
                _mean_nll(label_array, logits), float(result.fun))
    return TemperatureFit(temperature, FITTED)


def _check_temperature(temperature: float) -> float:
    value = float(temperature)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    return value


def apply_temperature(probs: Sequence[float], temperature: float) -> np.ndarray:
    """sigmoid(logit(p) / T) for each P(fake), after checking the inputs; T = 1 returns the
    probabilities unchanged, exactly. The formula itself is the serving runtime's
    (contracts/temperature.py), so evaluation and serving cannot disagree.

    Unlike the fit, nothing is clipped here: 0 stays 0 and 1 stays 1, and distinct scores stay
    distinct, so no decision can change at the calibrated threshold.
    """
    temperature = _check_temperature(temperature)
    values = np.asarray(probs, dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError("cannot apply a temperature: probabilities must be finite (got NaN or infinity)")
    metrics.check_probabilities(values)
    return inference_temperature.apply_temperature(values, temperature)


def calibrate_threshold(threshold: float, temperature: float) -> float:
    """The decision threshold in calibrated probability space.

    Guarantee: for every P(fake) p, p >= threshold exactly when
    apply_temperature(p, T) >= calibrate_threshold(threshold, T), because the threshold goes
    through the same increasing map as the scores. Thresholds outside [0, 1], which call every
    image or none fake, are kept as they are, which keeps that meaning. Floating point bounds
    the guarantee in one place only: for T < 0.5, calibrated scores within about 1e-16 of 1.0
    round to the same number, so two such scores that straddle the threshold get one decision
    (every float32 model output stays distinct for T >= 0.5).
    """
    value = float(threshold)
    if not math.isfinite(value):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    if not 0.0 <= value <= 1.0:
        return value
    return float(apply_temperature(np.array([value]), temperature)[0])


def write_reliability_diagram(labels: Sequence[int], probs_before: Sequence[float], probs_after: Sequence[float],
                              bins: int, png_file: Path, json_file: Path) -> tuple[Path, Path]:
    """A reliability diagram of P(fake) before and after calibration, as a PNG and as DVC plot
    data: a JSON list of {"mean_predicted", "fraction_positive", "count", "curve"} records, one per
    non-empty bin, with curve "before" or "after". Returns (png_file, json_file)."""
    label_array, before = _checked(labels, probs_before, "draw a reliability diagram (before calibration)")
    _, after = _checked(label_array, probs_after, "draw a reliability diagram (after calibration)")
    curves = {"before": before, "after": after}
    records = [
        {"mean_predicted": b["mean_predicted"], "fraction_positive": b["fraction_positive"], "count": b["count"],
         "curve": curve}
        for curve, values in curves.items()
        for b in metrics.calibration_bins(label_array, values, bins)
    ]
    write_json_atomic(json_file, records)
    _render(Path(png_file), label_array, curves, records, bins)
    logger.info("Wrote the reliability diagram to %s and %s", png_file, json_file)
    return Path(png_file), Path(json_file)


def _render(path: Path, labels: np.ndarray, curves: dict[str, np.ndarray], records: list[dict],
            bins: int) -> None:
    figure = Figure(figsize=(6.0, 6.5), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    curve_axes, count_axes = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    curve_axes.plot([0, 1], [0, 1], color="gray", ls="--", lw=1, label="perfectly calibrated")
    edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    for curve, values in curves.items():
        points = [r for r in records if r["curve"] == curve]
        ece = metrics.positive_class_ece(labels, values, bins)
        curve_axes.plot([r["mean_predicted"] for r in points], [r["fraction_positive"] for r in points],
                        marker="o", lw=2, color=CURVE_COLORS[curve], label=f"{curve} calibration (ECE = {ece:.3f})")
        count_axes.hist(values, bins=edges, histtype="step", lw=1.5, color=CURVE_COLORS[curve], label=curve)
    curve_axes.set(title=f"Reliability diagram ({bins} bins)", ylabel="Fraction of images that are fake",
                   xlim=(0, 1), ylim=(-0.01, 1.01))
    curve_axes.grid(alpha=0.3)
    curve_axes.legend(loc="upper left")
    count_axes.set(xlabel="Predicted P(fake)", ylabel="Images")
    count_axes.legend(loc="upper center", fontsize="small")
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI)
