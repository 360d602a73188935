"""Which model serves, and what speaks for it: `load_served_model` picks the backend from the export
folder's model card, finds the evaluation measured on that very model (its card, else a scores.json
recorded for its model.h5), and fixes the decision rule once, in the predictor it returns.

One evaluation supplies both the metrics and the rule, so a process never serves one run's model with
another run's threshold or numbers. A card or scores.json that exists but cannot be read (or whose rule
cannot be honored: a threshold outside (0, 1), a bad temperature) is an error, never a reason to fall
back to another backend or to the default rule: the server then says it is not ready, and why.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepfake_detector.contracts.decision_rule import DEFAULT_RULE, DecisionRule
from deepfake_detector.contracts.errors import ConfigError, ModelError
from deepfake_detector.contracts.export_layout import BACKENDS, MODEL_CARD_NAME, TFLITE_VARIANTS
from deepfake_detector.contracts.input_fit import LEGACY_INPUT_FIT
from deepfake_detector.contracts.json_files import read_json_object
from deepfake_detector.contracts.model_card import ModelCard, read_model_card
from deepfake_detector.contracts.scores import Scores, read_scores
from deepfake_detector.inference.predictor import Predictor, TFLitePredictor
from deepfake_detector.inference.variant_choice import AUTO_VARIANT, VariantChoice, choose_variant, configured_variant
from deepfake_detector.utils.files import sha256_file

logger = logging.getLogger(__name__)

THRESHOLD_OVERRIDE_SOURCE = "params.yaml serve.threshold"
VERSION_LENGTH = 12


@dataclass(frozen=True)
class ServedModel:
    """A loaded predictor and the evaluation that was measured on the model behind it, if any."""

    predictor: Predictor
    model_sha256: str            # the trained model.h5 the served file is, or was exported from
    card: ModelCard | None       # the export's card, when it was made from this model
    scores: Scores | None        # scores.json, when no card speaks for this model and it was measured on it
    variant_choice: VariantChoice | None = None  # how the TFLite variant was chosen; None when Keras serves

    @property
    def rule(self) -> DecisionRule:
        """The process's decision rule; the predictor holds it."""
        return self.predictor.rule

    @property
    def version(self) -> str:
        return self.model_sha256[:VERSION_LENGTH]

    @property
    def test_metrics(self) -> Mapping[str, Any] | None:
        """The held-out test metrics of the served model; None when no evaluation matches it."""
        if self.card is not None:
            return self.card.test_metrics
        return self.scores.metrics if self.scores is not None else None

    @property
    def test_metrics_source(self) -> str | None:
        if self.card is not None:
            return self.card.path.name
        return self.scores.path.name if self.scores is not None else None


@dataclass(frozen=True)
class _Choice:
    """The file to serve, with which backend, and the card when it describes that file's model."""

    backend: str
    path: Path
    variant: str
    model_sha256: str
    card: ModelCard | None
    expected_sha256: str | None = None   # the card's SHA-256 of an exported file
    variant_choice: VariantChoice | None = None


def load_served_model(model_file: str | Path, export_dir: str | Path | None = None, backend: str = "auto",
                      variant: str = "float32", num_threads: int | None = None, *,
                      scores_file: str | Path | None = None, threshold: float | None = None,
                      input_fit: str | None = None) -> ServedModel:
    """The model serving should use, with its one decision rule.

    tflite: export_dir's <variant> file, which must match the model card's SHA-256 (model_file need
    not exist; if it does and differs from the card's source, the export is stale: a warning). Variant
    auto: the fastest on this CPU of the exports that passed the AUC gate (variant_choice.py), measured
    with num_threads interpreter threads.
    keras: model_file itself. auto: tflite when that export is intact and was made from model_file
    (or model_file is absent), else keras; the choice and its reason are logged. Only an absent card
    lets auto choose keras for that reason: a card that exists but is malformed raises ModelError.

    The rule is the card's when the card describes the served model, else scores_file's when it
    records that model's SHA-256, else the default (no evaluation of this model exists: a warning);
    threshold (params.yaml serve.threshold) replaces its threshold only, never its temperature.
    The input fit (crop or resize) is the card's when the card describes the served model, else
    input_fit (params.yaml model.input_fit), else resize, as models were trained before the choice.
    A card or scores_file that exists but is malformed, or holds a rule that cannot be honored,
    raises ModelError naming the file and the problem, whichever backend was asked for.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if backend != "keras" and variant not in (*TFLITE_VARIANTS, AUTO_VARIANT):
        raise ValueError(f"unknown TFLite variant {variant!r}: expected one of "
                         f"{', '.join((*TFLITE_VARIANTS, AUTO_VARIANT))}")
    model_file = Path(model_file)
    export_dir = Path(export_dir) if export_dir is not None else None
    if backend == "tflite":
        choice = _tflite_choice(model_file, export_dir, variant, num_threads)
    elif backend == "keras":
        choice = _keras_choice(model_file, _card_if_present(export_dir))
    else:
        choice = _auto_choice(model_file, export_dir, variant, num_threads)
    scores = None if choice.card is not None else _scores_of(scores_file, choice.model_sha256)
    rule = _decide_rule(choice.card, scores, threshold)
    fit = choice.card.input_fit if choice.card is not None else (input_fit or LEGACY_INPUT_FIT)
    if choice.backend == "tflite":
        predictor: Predictor = TFLitePredictor(choice.path, num_threads, choice.variant,
                                               expected_sha256=choice.expected_sha256, rule=rule, input_fit=fit)
    else:
        predictor = _keras_predictor(choice.path, rule, fit)
    return ServedModel(predictor=predictor, model_sha256=choice.model_sha256, card=choice.card, scores=scores,
                       variant_choice=choice.variant_choice)


def load_predictor(model_file: str | Path, export_dir: str | Path | None = None, backend: str = "auto",
                   variant: str = "float32", num_threads: int | None = None) -> Predictor:
    """The predictor load_served_model picks, for callers that only score (benchmarks, scripts)."""
    return load_served_model(model_file, export_dir, backend, variant, num_threads).predictor


def _keras_predictor(path: Path, rule: DecisionRule, input_fit: str) -> Predictor:
    """The Keras backend, or a ModelError saying what to do when this environment cannot run it (the serving
    image has no TensorFlow)."""
    try:
        from deepfake_detector.inference.keras_backend import KerasPredictor

        return KerasPredictor(path, rule=rule, input_fit=input_fit)
    except ImportError as error:
        raise ModelError(f"the keras backend cannot run here: {error.name or error} is not installed; serve the "
                         "TFLite export instead (backend tflite, or auto with an intact export)") from error


def _tflite_choice(model_file: Path, export_dir: Path | None, variant: str, num_threads: int | None) -> _Choice:
    card = _read_card(export_dir)
    picked = _pick_variant(card, variant, num_threads)
    path = card.file_of(picked.variant)
    if model_file.is_file() and sha256_file(model_file) != card.source_sha256:
        logger.warning("%s is stale: %s changed after the export; re-run the export stage", path, model_file)
    return _Choice("tflite", path, picked.variant, card.source_sha256, card, card.exports[picked.variant].sha256,
                   picked)


def _auto_choice(model_file: Path, export_dir: Path | None, variant: str, num_threads: int | None) -> _Choice:
    card = _card_if_present(export_dir)
    if card is None:
        where = f"no {MODEL_CARD_NAME} in {export_dir}" if export_dir is not None else "no export folder given"
        return _fall_back_to_keras(model_file, None, where, logging.INFO)
    try:
        # Staleness first: a stale export is not worth measuring.
        if model_file.is_file() and sha256_file(model_file) != card.source_sha256:
            raise ModelError(f"the export is stale: {model_file} changed after it was exported")
        picked = _pick_variant(card, variant, num_threads)
        path = card.verify(picked.variant)
    except ModelError as reason:
        # The card is sound; only its files are unusable. Keras still decides by the card's rule when the
        # card was made from model_file (_keras_choice checks).
        return _fall_back_to_keras(model_file, card, str(reason), logging.WARNING)
    logger.info("Serving %s with the TFLite backend (variant %s)%s", path, picked.variant,
                "" if model_file.is_file() else f"; {model_file} is absent, the export is taken as is")
    return _Choice("tflite", path, picked.variant, card.source_sha256, card, card.exports[picked.variant].sha256,
                   picked)


def _pick_variant(card: ModelCard, variant: str, num_threads: int | None) -> VariantChoice:
    return choose_variant(card, num_threads) if variant == AUTO_VARIANT else configured_variant(variant)


def _fall_back_to_keras(model_file: Path, card: ModelCard | None, reason: str, level: int) -> _Choice:
    if not model_file.is_file():
        raise ModelError(f"no model to serve: {model_file} not found, and no usable TFLite export ({reason})")
    logger.log(level, "Serving %s with the Keras backend: %s", model_file, reason)
    return _keras_choice(model_file, card)


def _keras_choice(model_file: Path, card: ModelCard | None) -> _Choice:
    """model_file, with the card only when the card was made from this very file."""
    if not model_file.is_file():
        raise ModelError(f"{model_file}: Keras model not found; run the train stage first")
    model_sha = sha256_file(model_file)
    if card is not None and card.source_sha256 != model_sha:
        logger.warning("%s describes another model (source %s, serving %s): ignoring it", card.path,
                       card.source_sha256[:VERSION_LENGTH], model_sha[:VERSION_LENGTH])
        card = None
    return _Choice("keras", model_file, "keras", model_sha, card)


def _read_card(export_dir: Path | None) -> ModelCard:
    if export_dir is None:
        raise ModelError("no export folder given")
    return read_model_card(export_dir)


def _card_if_present(export_dir: Path | None) -> ModelCard | None:
    """export_dir's card, or None when there is none. A card that is there but malformed raises: skipping it
    would serve its model by another rule than its evaluation chose."""
    if export_dir is None or not (export_dir / MODEL_CARD_NAME).exists():
        return None
    return read_model_card(export_dir)


def _scores_of(scores_file: str | Path | None, model_sha256: str) -> Scores | None:
    """scores_file when it records model_sha256 as the model it was measured on, else None. Only a file
    that is this model's evaluation is checked in full: a malformed one then raises ModelError, while a
    stale one from another model, however broken, is ignored rather than keeping serving down."""
    if scores_file is None or not Path(scores_file).exists():
        return None
    measured_on = read_json_object(Path(scores_file), "evaluate").get("model_sha256")
    if measured_on != model_sha256:
        logger.warning("%s was measured on %s, not on the served model %s: its metrics and threshold are not used",
                       scores_file, str(measured_on or "an unrecorded model")[:VERSION_LENGTH],
                       model_sha256[:VERSION_LENGTH])
        return None
    return read_scores(Path(scores_file))


def _decide_rule(card: ModelCard | None, scores: Scores | None, threshold: float | None) -> DecisionRule:
    evaluated = card.rule if card is not None else scores.rule if scores is not None else DEFAULT_RULE
    if threshold is not None:
        # The configured threshold replaces the evaluated one; the temperature still belongs to the model.
        try:
            return DecisionRule(threshold, evaluated.temperature, THRESHOLD_OVERRIDE_SOURCE)
        except ValueError as error:
            raise ConfigError(f"{THRESHOLD_OVERRIDE_SOURCE}: {error}") from None
    if evaluated is DEFAULT_RULE:
        logger.warning("no evaluation of the served model: deciding at P(fake) >= %.1f, uncalibrated; run the "
                       "evaluate and export stages", DEFAULT_RULE.threshold)
    return evaluated
