"""The decision rule the evaluate stage fixed: one threshold on the calibrated P(fake), its raw-output
twin, the temperature that maps one to the other, and where the threshold came from.

Every consumer (scoring stages, export, serving, CLI) holds one DecisionRule per process and asks it,
so the threshold and the temperature can never disagree between two objects.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from deepfake_detector.contracts.labels import CLASS_NAMES, FAKE, REAL
from deepfake_detector.contracts.temperature import apply_temperature

DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class DecisionRule:
    threshold: float          # on the calibrated P(fake): what serving and scores.json use
    temperature: float = 1.0  # calibrated = sigmoid(logit(raw) / temperature)
    source: str = "default"   # where the threshold comes from, e.g. "model_card.json" or "scores.json"
    # The raw-output boundary as the evaluate stage chose it, kept so that a round trip through the
    # temperature cannot move a decision by one rounding step; None: derived from the two above.
    recorded_raw_threshold: float | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.threshold, (int, float)) and 0.0 < float(self.threshold) < 1.0):
            raise ValueError(f"a decision threshold must lie strictly between 0 and 1, got {self.threshold!r}")
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature)
                and self.temperature > 0):
            raise ValueError(f"a temperature must be a positive number, got {self.temperature!r}")
        if self.recorded_raw_threshold is not None and not 0.0 < float(self.recorded_raw_threshold) < 1.0:
            raise ValueError("the raw-output threshold must lie strictly between 0 and 1, got "
                             f"{self.recorded_raw_threshold!r}")

    @property
    def raw_threshold(self) -> float:
        """The same boundary on the model's own output, for stages that score model.h5 directly."""
        if self.recorded_raw_threshold is not None:
            return float(self.recorded_raw_threshold)
        return float(apply_temperature(self.threshold, 1.0 / self.temperature))

    def is_fake(self, p_fake: float) -> bool:
        """P(fake) at or above the threshold means fake."""
        return float(p_fake) >= self.threshold

    def label(self, p_fake: float) -> str:
        return CLASS_NAMES[FAKE] if self.is_fake(p_fake) else CLASS_NAMES[REAL]

    def calibrate(self, raw_p_fake):
        """The calibrated P(fake) for the model's raw output (array or number)."""
        return apply_temperature(raw_p_fake, self.temperature)


DEFAULT_RULE = DecisionRule(DEFAULT_THRESHOLD, 1.0, "default")
