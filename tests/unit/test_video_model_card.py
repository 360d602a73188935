"""The model card hands the video rule chosen on validation videos to serving: the export writes scores.json's video
block into the card's `video`, states it in words, and the card reader refuses a malformed one, naming the key."""
import json

import pytest

from deepfake_detector.components.evaluation.learning import LearningCheck
from deepfake_detector.components.export.model_card import build_model_card, render_markdown
from deepfake_detector.contracts.decision_rule import DecisionRule
from deepfake_detector.contracts.errors import ModelError
from deepfake_detector.contracts.model_card import read_model_card

SCORES_VIDEO = {
    "aggregation": "max", "aggregation_val_roc_auc": {"mean": 0.81, "median": 0.8, "max": 0.86, "top_k_mean": 0.85},
    "chosen_on": "val videos", "threshold": 0.4321, "threshold_rule": "eer", "n_val_videos": 20,
    "n_test_videos": 24, "frames_per_video": 16.0, "frame_intervals": "by video",
    "accuracy": 0.875, "roc_auc": 0.93, "roc_auc_ci_low": 0.82, "roc_auc_ci_high": 0.99, "eer": 0.125,
}


def card_of(video=None):
    card = build_model_card(
        params={"model": {"alpha": 0.35, "dropout": 0.2, "weights": "none"}}, image_size=32, total_parameters=4,
        rule=DecisionRule(0.42, 1.0), rule_origin={"threshold_rule": "eer", "temperature_status": "off"},
        test_metrics={"roc_auc": 0.98, "roc_auc_ci_low": 0.9, "roc_auc_ci_high": 1.0},
        learning=LearningCheck(roc_auc=0.99, ci_low=0.97, ci_high=1.0, n=120), exports={},
        source={"file": "model.h5", "sha256": "0" * 64}, dataset={"source": "demo-video"}, git={"commit": "abc"},
        video=video)
    return card, render_markdown(card)


def written(tmp_path, card):
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    return tmp_path


def test_the_card_records_the_rule_and_threshold_chosen_on_val_videos(tmp_path):
    card, _ = card_of(SCORES_VIDEO)
    video = card["video"]
    assert (video["aggregation"], video["threshold"], video["chosen_on"]) == ("max", 0.4321, "val videos")
    assert video["val_roc_auc"] == SCORES_VIDEO["aggregation_val_roc_auc"]
    assert video["test_metrics"]["roc_auc"] == 0.93 and video["test_metrics"]["roc_auc_ci_low"] == 0.82
    assert read_model_card(written(tmp_path, card)).video == video


def test_the_markdown_states_the_rule_in_words():
    _, text = card_of(SCORES_VIDEO)
    assert ("a video's P(fake) is its most fake frame's calibrated P(fake) (rule `max`), the rule with the highest "
            "ROC AUC on the 20 validation videos (mean 0.8100, median 0.8000, max 0.8600, top_k_mean 0.8500); a "
            "video is fake at 0.4321 or above, chosen on the validation videos by the equal error rate") in text
    assert "| roc_auc | 0.9300 | 0.8200 – 0.9900 |" in text
    assert "95 % stratified bootstrap intervals over videos)" in text


def test_a_model_evaluated_on_still_images_has_no_video_rule(tmp_path):
    card, text = card_of(None)
    assert card["video"] is None and "## Videos" not in text
    assert "95 % stratified bootstrap intervals)" in text
    assert read_model_card(written(tmp_path, card)).video is None


def test_a_card_from_before_video_evaluation_reads_as_no_video_rule(tmp_path):
    card, _ = card_of(None)
    del card["video"]
    assert read_model_card(written(tmp_path, card)).video is None


@pytest.mark.parametrize(("change", "named"), [
    ({"aggregation": "mode"}, "video.aggregation must be one of mean, median, max, top_k_mean"),
    ({"aggregation": None}, "video.aggregation must be one of"),
    ({"threshold": 1.5}, "video.threshold must be a number strictly between 0 and 1"),
    ({"threshold": "0.4"}, "video.threshold must be a number"),
    ({"val_roc_auc": {"max": 1.2}}, "video.val_roc_auc must map rules"),
    ({"val_roc_auc": {"loudest": 0.9}}, "video.val_roc_auc must map rules"),
    ({"chosen_on": 3}, "video.chosen_on must be a string"),
])
def test_a_malformed_video_block_is_refused_naming_the_key(tmp_path, change, named):
    card, _ = card_of(SCORES_VIDEO)
    card["video"].update(change)
    with pytest.raises(ModelError, match=f"malformed model card: .*{named}"):
        read_model_card(written(tmp_path, card))


def test_a_video_block_that_is_not_an_object_is_refused(tmp_path):
    card, _ = card_of(None)
    card["video"] = "max"
    with pytest.raises(ModelError, match="video must be an object or null"):
        read_model_card(written(tmp_path, card))
