"""Did the model learn? Validation ROC AUC with a bootstrap interval, and one loud warning when that
interval does not lie above 0.5 (chance).

A model at chance still gets a threshold, a test score and exports; every stage that shows them
(train, evaluate, the report, the model card, the export gate) states this verdict instead, in the
same words.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from deepfake_detector.components.evaluation.bootstrap import bootstrap_intervals
from deepfake_detector.components.evaluation.metrics import check_binary_inputs

logger = logging.getLogger(__name__)

CHANCE_AUC = 0.5
# Enough for a stable 95 % interval; validation splits are small, so this takes well under a second.
RESAMPLES = 1000
CONFIDENCE = 0.95
SCORE_KEYS = ("val_roc_auc", "val_roc_auc_ci_low", "val_roc_auc_ci_high", "val_above_chance")
ADVICE = ("train longer (train.min_steps, train.fine_tune_epochs), on more images, or from pretrained weights "
          "(model.weights: imagenet)")


@dataclass(frozen=True)
class LearningCheck:
    """Validation ROC AUC and its 95 % stratified bootstrap interval."""

    roc_auc: float
    ci_low: float
    ci_high: float
    n: int                             # validation images

    @property
    def is_above_chance(self) -> bool:
        return self.ci_low > CHANCE_AUC

    def warning(self) -> str | None:
        """The sentence every stage shows for a model that did not learn; None when it did."""
        if self.is_above_chance:
            return None
        measured = (f"validation ROC AUC {self.roc_auc:.3f} (95 % interval {self.ci_low:.3f} – {self.ci_high:.3f}, "
                    f"{self.n} images)")
        if self.ci_high < CHANCE_AUC:
            return (f"THE MODEL RANKS FAKES BELOW REALS: {measured} lies below 0.5. Its decisions are not "
                    f"to be trusted; {ADVICE}.")
        return (f"THE MODEL DID NOT LEARN: {measured} includes 0.5, chance. Its verdicts are no better than "
                f"a coin; {ADVICE}.")

    def as_scores(self) -> dict[str, Any]:
        """The scores.json keys (SCORE_KEYS) the report, the card and the export read back."""
        return dict(zip(SCORE_KEYS, (self.roc_auc, self.ci_low, self.ci_high, self.is_above_chance), strict=True))


def check_learning(labels: Sequence[int], probs: Sequence[float], *, seed: int, stage: str,
                   videos: Sequence[str] | None = None) -> LearningCheck | None:
    """The validation AUC of these predictions with its interval; logs a warning from `stage` when the
    interval does not lie above chance. None (logged) when validation lacks a class: no AUC exists.

    With `videos` (each row's video, "" for a still), the interval resamples whole videos: a clip's frames
    look alike, and resampling them one by one would give an interval too narrow to trust."""
    if len(set(np.asarray(labels).tolist())) < 2:
        logger.warning("%s: cannot tell whether the model learned: the validation split holds one class only", stage)
        return None
    label_array, values = check_binary_inputs(labels, probs)
    # ROC AUC needs no threshold; the bootstrap's is for threshold metrics, of which none is asked.
    interval = bootstrap_intervals(label_array, values, threshold=0.5, resamples=RESAMPLES, seed=seed,
                                   confidence=CONFIDENCE, metrics=("roc_auc",), videos=videos)
    check = LearningCheck(roc_auc=float(roc_auc_score(label_array, values)), ci_low=interval["roc_auc_ci_low"],
                          ci_high=interval["roc_auc_ci_high"], n=int(label_array.size))
    message = check.warning()
    if message is None:
        logger.info("%s: validation ROC AUC %.3f (95 %% interval %.3f – %.3f, %d images): the model learned",
                    stage, check.roc_auc, check.ci_low, check.ci_high, check.n)
    else:
        logger.warning("%s: %s", stage, message)
    return check


def read_learning_check(scores: Mapping[str, Any]) -> LearningCheck | None:
    """The check the evaluate stage recorded in scores.json (its metrics); None for scores written
    before it existed."""
    values = [scores.get(key) for key in (*SCORE_KEYS[:3], "n_val")]
    if not all(isinstance(value, int | float) and not isinstance(value, bool) for value in values):
        return None
    roc_auc, low, high, n = values
    return LearningCheck(roc_auc=float(roc_auc), ci_low=float(low), ci_high=float(high), n=int(n))
