"""Which TFLite export serves, and why: as configured, or (variant auto) the fastest on this very CPU of
the exports that passed the export stage's AUC gate.

Speed is measured, not guessed from CPU flags: full-integer int8 runs about twice as fast as float32 where
the CPU has VNNI and slower where it has not, and float16 or dynamic-range int8 depend on the runtime's
kernels. Each candidate gets a few batch-1 calls on one fixed input, in interleaved rounds (a neighbour's
load slows all of them alike), within a small time budget, so that every worker of a server can afford it
at start-up. Near-ties go to the export closest to the trained model, so workers measuring a little
differently still agree.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepfake_detector.contracts.errors import ModelError
from deepfake_detector.contracts.export_layout import MODEL_CARD_NAME, TFLITE_VARIANTS
from deepfake_detector.contracts.model_card import ModelCard
from deepfake_detector.inference.predictor import TFLitePredictor

logger = logging.getLogger(__name__)

AUTO_VARIANT = "auto"
CONFIGURED = "configured"
# What the export stage records for every variant it held to the AUC gate; it writes no card when one fails.
GATE_KEY = "val_auc_drop"
MIN_ROUNDS = 3
MAX_ROUNDS = 10
BUDGET_S_PER_VARIANT = 0.15
# A variant within this fraction of the fastest p50 counts as just as fast.
TIE_MARGIN = 0.10


@dataclass(frozen=True)
class VariantChoice:
    """The TFLite variant to serve, how it was chosen (auto or configured), and the reason in words."""

    variant: str
    mode: str
    reason: str
    p50_ms: Mapping[str, float] = field(default_factory=dict)  # batch-1 latency of each variant measured

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "reason": self.reason, "p50_ms": dict(self.p50_ms) or None}


def configured_variant(variant: str) -> VariantChoice:
    return VariantChoice(variant, CONFIGURED, f"configured: {variant} (serve.variant)")


def choose_variant(card: ModelCard, num_threads: int | None) -> VariantChoice:
    """The fastest gated export on this CPU; ModelError when none of them can be loaded."""
    listed = [variant for variant in TFLITE_VARIANTS if variant in card.exports]
    gated = [variant for variant in listed if GATE_KEY in card.exports[variant].facts]
    if not gated:
        fallback = listed[0] if listed else TFLITE_VARIANTS[0]
        return _chosen(VariantChoice(fallback, AUTO_VARIANT, f"{MODEL_CARD_NAME} predates the export AUC gate "
                                     f"(no {GATE_KEY} recorded): serving {fallback}, the export closest to the "
                                     "trained model it lists, unmeasured"))
    if len(gated) == 1:
        return _chosen(VariantChoice(gated[0], AUTO_VARIANT,
                                     f"{gated[0]} is the only export that passed the AUC gate: nothing to compare"))
    p50_ms, left_out = _measure(card, gated, num_threads)
    fastest = min(p50_ms, key=p50_ms.__getitem__)
    # Candidates are in TFLITE_VARIANTS order, closest to the trained model first.
    picked = next(variant for variant in p50_ms if p50_ms[variant] <= p50_ms[fastest] * (1 + TIE_MARGIN))
    reason = (f"fastest on this CPU of the exports that passed the AUC gate ({', '.join(p50_ms)}), batch-1 p50 "
              "measured at load")
    if picked != fastest:
        reason += f"; within {TIE_MARGIN:.0%} of {fastest}, so the one closer to the trained model"
    if left_out:
        reason += "; left out: " + "; ".join(f"{variant} ({why})" for variant, why in left_out.items())
    return _chosen(VariantChoice(picked, AUTO_VARIANT, reason, p50_ms))


def _chosen(choice: VariantChoice) -> VariantChoice:
    measured = ", ".join(f"{variant} {ms:.2f} ms" for variant, ms in choice.p50_ms.items())
    logger.info("variant auto: serving %s: %s%s", choice.variant, choice.reason,
                f" ({measured})" if measured else "")
    return choice


def _measure(card: ModelCard, variants: list[str], num_threads: int | None) -> tuple[dict[str, float], dict[str, str]]:
    """Median milliseconds of one batch-1 prediction per variant that loads, and why any did not load."""
    predictors: dict[str, TFLitePredictor] = {}
    left_out: dict[str, str] = {}
    for variant in variants:
        try:
            predictors[variant] = TFLitePredictor(card.file_of(variant), num_threads, variant,
                                                  per_thread_interpreters=False,
                                                  expected_sha256=card.exports[variant].sha256)
        except ModelError as error:
            logger.warning("variant auto: leaving %s out: %s", variant, error)
            left_out[variant] = "does not load"
    if not predictors:
        raise ModelError(f"none of the exports that passed the AUC gate loads ({', '.join(variants)}); "
                         "re-run the export stage")
    try:
        size = next(iter(predictors.values())).image_size
        image = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype(np.float32)
        for predictor in predictors.values():
            predictor.predict(image)  # untimed: allocates the arena, packs the weights
        samples: dict[str, list[float]] = {variant: [] for variant in predictors}
        deadline = time.perf_counter() + BUDGET_S_PER_VARIANT * len(predictors)
        for completed in range(1, MAX_ROUNDS + 1):
            for variant, predictor in predictors.items():
                start = time.perf_counter()
                predictor.predict(image)
                samples[variant].append((time.perf_counter() - start) * 1000.0)
            if completed >= MIN_ROUNDS and time.perf_counter() > deadline:
                break
    finally:
        for predictor in predictors.values():
            predictor.close()
    return {variant: round(float(np.median(times)), 3) for variant, times in samples.items()}, left_out
