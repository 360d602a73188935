"""How a video's frame scores become its verdict in this process: serve.video_aggregation, with auto resolved once
at load from the served model's card (the rule and threshold the evaluate stage chose on validation videos).

auto without such a card (a model evaluated on still images, an older card, the Keras backend before an export)
serves mean at the image threshold. An explicit rule is served as given, at the image threshold: the card's video
threshold was chosen for its own rule only. serve.threshold, when set, is the threshold for videos too.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from deepfake_detector.config.entities import ServingConfig
from deepfake_detector.contracts.export_layout import MODEL_CARD_NAME
from deepfake_detector.contracts.labels import CLASS_NAMES, FAKE, REAL
from deepfake_detector.contracts.video_aggregation import AUTO_AGGREGATION, DEFAULT_AGGREGATION
from deepfake_detector.inference.served_model import ServedModel

logger = logging.getLogger(__name__)

CONFIGURED_SOURCE = "params.yaml serve.video_aggregation"
RULES_THAT_MOVE_WITH_FRAMES = ("max", "top_k_mean")  # a clip's most fake frame is more extreme among more frames
DEFAULT_SOURCE = "default"      # auto, and nothing chosen on validation videos speaks for the served model
CARD_AGGREGATION_SOURCE = f"{MODEL_CARD_NAME} video.aggregation"
CARD_THRESHOLD_SOURCE = f"{MODEL_CARD_NAME} video.threshold"


@dataclass(frozen=True)
class VideoRule:
    """The aggregation rule and the threshold on the aggregated P(fake), each with where it came from."""

    aggregation: str
    aggregation_source: str
    threshold: float
    threshold_source: str
    chosen_on: str | None = None                        # the card's, when the rule is the card's
    val_roc_auc: dict[str, float] | None = None         # each rule's on the validation videos, likewise

    def label(self, p_fake: float) -> str:
        """A video's aggregated P(fake) at or above the threshold means fake."""
        return CLASS_NAMES[FAKE] if float(p_fake) >= self.threshold else CLASS_NAMES[REAL]

    def as_api_dict(self) -> dict[str, Any]:
        return {"aggregation": self.aggregation, "aggregation_source": self.aggregation_source,
                "threshold": self.threshold, "threshold_source": self.threshold_source,
                "chosen_on": self.chosen_on, "val_roc_auc": self.val_roc_auc}


def video_rule_as_evaluated(config: ServingConfig, model: ServedModel) -> VideoRule:
    """The video rule this process serves (see the module docstring); logged, with a note when an explicit rule
    differs from the one chosen on validation videos."""
    image_rule = model.rule
    chosen = model.card.video if model.card is not None else None
    is_card_rule = chosen is not None and chosen["aggregation"] == config.video_aggregation
    if config.video_aggregation != AUTO_AGGREGATION and not is_card_rule:
        if chosen is not None:
            logger.warning("serve.video_aggregation %s differs from the rule chosen on validation videos (%s, in %s), "
                           "and videos are judged at the image threshold; serve.video_aggregation auto follows the "
                           "evaluation", config.video_aggregation, chosen["aggregation"], model.card.path)
        return VideoRule(config.video_aggregation, CONFIGURED_SOURCE, image_rule.threshold, image_rule.source)
    if chosen is None:
        logger.info("videos: %s of the frame scores at the image threshold (serve.video_aggregation auto: %s)",
                    DEFAULT_AGGREGATION, "no model card speaks for the served model" if model.card is None
                    else f"{model.card.path} records no rule chosen on validation videos")
        return VideoRule(DEFAULT_AGGREGATION, DEFAULT_SOURCE, image_rule.threshold, image_rule.source)
    _warn_if_sampled_otherwise(config, chosen)
    if config.threshold is not None:  # the operator's threshold wins, for videos as for images
        threshold, threshold_source = image_rule.threshold, image_rule.source
    else:
        threshold, threshold_source = float(chosen["threshold"]), CARD_THRESHOLD_SOURCE
    logger.info("videos: %s of the frame scores, as chosen on %s (%s); fake at %.4f (%s)", chosen["aggregation"],
                chosen.get("chosen_on") or "validation videos", model.card.path, threshold, threshold_source)
    val_roc_auc = chosen.get("val_roc_auc")
    source = CARD_AGGREGATION_SOURCE if config.video_aggregation == AUTO_AGGREGATION else CONFIGURED_SOURCE
    return VideoRule(chosen["aggregation"], source, threshold, threshold_source,
                     chosen_on=chosen.get("chosen_on"), val_roc_auc=dict(val_roc_auc) if val_roc_auc else None)


def _warn_if_sampled_otherwise(config: ServingConfig, chosen: dict[str, Any]) -> None:
    """max and top_k_mean move with the number of frames scored: the video threshold holds for as many frames as
    evaluate aggregated (the card's frames_per_video, data.video.frames_per_video)."""
    evaluated = chosen.get("frames_per_video")
    if chosen["aggregation"] not in RULES_THAT_MOVE_WITH_FRAMES or evaluated is None:
        return
    if config.video_fps is not None or config.video_frames != round(evaluated):
        served = f"serve.video_fps {config.video_fps:g}" if config.video_fps is not None \
            else f"serve.video_frames {config.video_frames}"
        logger.warning("videos: %s was chosen on videos of %g frames, and %s scores another number: its video "
                       "threshold is then off (set serve.video_frames: %d to serve as evaluated)",
                       chosen["aggregation"], evaluated, served, round(evaluated))
