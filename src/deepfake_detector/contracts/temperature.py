"""Temperature scaling applied at inference: the one calibration step every consumer of P(fake) shares.

NumPy only, so the TensorFlow-free serving runtime applies exactly what the evaluate stage fitted.
"""
from __future__ import annotations

import numpy as np


def apply_temperature(probs: np.ndarray | float, temperature: float) -> np.ndarray:
    """sigmoid(logit(p) / temperature), element-wise, float64.

    Monotone in p and unclipped (0 stays 0, 1 stays 1, distinct scores stay distinct), so rankings
    (ROC AUC) and decisions at a threshold mapped the same way are unchanged, and temperature 1/T
    undoes temperature T. Temperature 1 returns p as it was.
    """
    values = np.asarray(probs, dtype=np.float64)
    temperature = float(temperature)
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if temperature == 1.0:
        return values.copy()
    with np.errstate(divide="ignore", over="ignore"):
        logits = np.log(values) - np.log1p(-values)
        return 1.0 / (1.0 + np.exp(-logits / temperature))
