"""scores.json, the evaluate stage's output: test metrics plus the decision rule. The one reader.

Scoring stages, the export, the report and serving all read it through `read_scores`, so a file
every one of them accepts means the same thing to each.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfake_detector.contracts.decision_rule import DecisionRule
from deepfake_detector.contracts.errors import ModelError
from deepfake_detector.contracts.json_files import number, read_json_object
from deepfake_detector.utils.files import sha256_file

MADE_BY = "evaluate"
RULE_KEYS = ("threshold", "threshold_uncalibrated", "temperature")


@dataclass(frozen=True)
class Scores:
    """What the evaluate stage measured on the held-out test split, and how it decides."""

    path: Path
    rule: DecisionRule
    metrics: Mapping[str, Any] = field(default_factory=dict)   # every key but the rule's

    def get(self, key: str, default: Any = None) -> Any:
        return self.metrics.get(key, default)

    @property
    def model_sha256(self) -> str | None:
        """SHA-256 of the model.h5 these scores were measured on (absent in files from older runs)."""
        value = self.metrics.get("model_sha256")
        return value if isinstance(value, str) and value else None

    def require_model(self, model_file: Path) -> Scores:
        """self, after checking it was measured on model_file (files from older runs record no model and
        pass): scoring a model at another model's threshold would report numbers that belong to neither."""
        if self.model_sha256 is None:
            return self
        if not Path(model_file).is_file():
            raise ModelError(f"{model_file}: model not found; run the train stage first")
        if self.model_sha256 != sha256_file(model_file):
            raise ModelError(f"{self.path} holds the scores of another model than {model_file}; "
                             f"rerun the {MADE_BY} stage")
        return self

    @property
    def n_test(self) -> int | None:
        value = self.metrics.get("n_test")
        return int(value) if isinstance(value, (int, float)) else None


def read_scores(path: Path) -> Scores:
    """scores.json, checked: a threshold in (0, 1) and a positive temperature (1.0 when absent)."""
    path = Path(path)
    payload = read_json_object(path, MADE_BY)
    threshold = number(payload, "threshold", path, MADE_BY)
    temperature = number(payload, "temperature", path, MADE_BY, default=1.0)
    raw = number(payload, "threshold_uncalibrated", path, MADE_BY) if "threshold_uncalibrated" in payload else None
    try:
        rule = DecisionRule(threshold, temperature, source=path.name, recorded_raw_threshold=raw)
    except ValueError as error:
        raise ModelError(f"{path}: {error}; rerun the {MADE_BY} stage") from None
    metrics = {key: value for key, value in payload.items() if key not in RULE_KEYS}
    return Scores(path=path, rule=rule, metrics=metrics)
