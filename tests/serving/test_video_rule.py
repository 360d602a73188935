"""serve.video_aggregation auto: the rule and threshold the evaluate stage chose on validation videos, from the served
model's card; mean at the image threshold without one; an explicit rule as given. Every answer and /api/v1/model
say which rule was used and where it came from."""
from __future__ import annotations

import json
import logging
import shutil
from types import SimpleNamespace

import pytest

from deepfake_detector.contracts.decision_rule import DecisionRule
from deepfake_detector.contracts.errors import ModelError
from deepfake_detector.serving.app_factory import create_app
from deepfake_detector.serving.service import DetectionService
from deepfake_detector.serving.video_rule import video_rule_as_evaluated
from deepfake_detector.video.verdict import aggregate
from tests.serving.conftest import serving_config
from tests.serving.test_video_api import clip
from tests.tiny_served_model import THRESHOLD

FRAMES = 6
CARD_VIDEO = {"aggregation": "max", "threshold": 0.8125, "threshold_rule": "eer", "chosen_on": "val videos",
              "val_roc_auc": {"mean": 0.7, "median": 0.69, "max": 0.9, "top_k_mean": 0.88}}


@pytest.fixture(scope="module")
def card_with_video(project, tmp_path_factory):
    """A copy of the tiny project whose model card records a video rule chosen on validation videos."""
    root = tmp_path_factory.mktemp("video_rule") / "project"
    shutil.copytree(project, root)
    card_path = root / "export" / "model_card.json"
    card_path.write_text(json.dumps({**json.loads(card_path.read_text()), "video": CARD_VIDEO}))
    return root


@pytest.fixture(scope="module")
def auto_service(card_with_video):
    return DetectionService.from_config(serving_config(card_with_video, video_frames=FRAMES), environ={})


@pytest.fixture(scope="module")
def video_answer(auto_service):
    return auto_service.analyze_upload(clip(), "clip.mp4").as_api_dict()


def test_auto_serves_the_rule_and_threshold_chosen_on_val_videos(auto_service, video_answer):
    assert auto_service.config.video_aggregation == "auto"
    probabilities = [frame["fake_probability"] for frame in video_answer["frames"]]
    assert video_answer["fake_probability"] == pytest.approx(aggregate(probabilities, "max"))
    assert video_answer["threshold"] == CARD_VIDEO["threshold"] != auto_service.rule.threshold
    assert video_answer["label"] == ("fake" if video_answer["fake_probability"] >= 0.8125 else "real")


def test_the_answer_says_which_rule_and_where_it_came_from(video_answer):
    assert video_answer["aggregation"] == {"rule": "max", "description": f"most fake of {FRAMES} frames",
                                           "frames": FRAMES, "source": "model_card.json video.aggregation",
                                           "threshold_source": "model_card.json video.threshold"}


def test_the_model_endpoint_reports_the_video_rule_in_use(auto_service, card_with_video, templates_dir):
    app = create_app(serving_config(card_with_video), root=card_with_video, environ={}, service=auto_service,
                     template_folder=templates_dir)
    info = app.test_client().get("/api/v1/model").get_json()
    assert info["video"] == {"aggregation": "max", "aggregation_source": "model_card.json video.aggregation",
                             "threshold": 0.8125, "threshold_source": "model_card.json video.threshold",
                             "chosen_on": "val videos", "val_roc_auc": CARD_VIDEO["val_roc_auc"]}


def test_auto_without_a_video_rule_in_the_card_serves_mean_at_the_image_threshold(service, make_app):
    rule = service.video_rule
    assert (rule.aggregation, rule.aggregation_source) == ("mean", "default")
    assert (rule.threshold, rule.threshold_source) == (THRESHOLD, "model_card.json")
    info = make_app().test_client().get("/api/v1/model").get_json()
    assert info["video"]["aggregation"] == "mean" and info["video"]["val_roc_auc"] is None


def test_an_explicit_rule_is_served_as_given_at_the_image_threshold_with_a_warning(card_with_video, caplog):
    with caplog.at_level(logging.WARNING, logger="deepfake_detector.serving.video_rule"):
        service = DetectionService.from_config(serving_config(card_with_video, video_aggregation="median"),
                                               environ={})
    rule = service.video_rule
    assert (rule.aggregation, rule.aggregation_source) == ("median", "params.yaml serve.video_aggregation")
    assert rule.threshold == service.rule.threshold == THRESHOLD
    assert "serve.video_aggregation median differs from the rule chosen on validation videos (max" in caplog.text


def test_an_explicit_rule_equal_to_the_cards_is_served_at_the_cards_video_threshold(card_with_video):
    service = DetectionService.from_config(serving_config(card_with_video, video_aggregation="max"), environ={})
    rule = service.video_rule
    assert (rule.aggregation, rule.aggregation_source) == ("max", "params.yaml serve.video_aggregation")
    assert (rule.threshold, rule.threshold_source) == (0.8125, "model_card.json video.threshold")


def test_a_rule_chosen_on_other_frame_counts_warns_that_its_threshold_is_off(card_with_video, tmp_path, caplog):
    root = tmp_path / "project"
    shutil.copytree(card_with_video, root)
    card_path = root / "export" / "model_card.json"
    card = json.loads(card_path.read_text())
    card["video"]["frames_per_video"] = 8
    card_path.write_text(json.dumps(card))
    with caplog.at_level(logging.WARNING, logger="deepfake_detector.serving.video_rule"):
        DetectionService.from_config(serving_config(root, video_frames=8), environ={})
        assert "another number" not in caplog.text
        DetectionService.from_config(serving_config(root, video_frames=16), environ={})
    assert "max was chosen on videos of 8 frames, and serve.video_frames 16 scores another number" in caplog.text


def test_serve_threshold_judges_videos_too(card_with_video):
    service = DetectionService.from_config(serving_config(card_with_video, threshold=0.3), environ={})
    rule = service.video_rule
    assert (rule.aggregation, rule.threshold, rule.threshold_source) == ("max", 0.3, "params.yaml serve.threshold")


def test_a_model_without_a_card_serves_mean(project):
    keras_without_card = SimpleNamespace(rule=DecisionRule(0.4, 1.0, "scores.json"), card=None)
    rule = video_rule_as_evaluated(serving_config(project), keras_without_card)
    assert (rule.aggregation, rule.aggregation_source, rule.threshold, rule.threshold_source) == (
        "mean", "default", 0.4, "scores.json")


def test_a_malformed_video_rule_in_the_card_stops_the_load_naming_it(card_with_video, tmp_path):
    root = tmp_path / "project"
    shutil.copytree(card_with_video, root)
    card_path = root / "export" / "model_card.json"
    card = json.loads(card_path.read_text())
    card["video"]["aggregation"] = "loudest"
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelError, match="video.aggregation must be one of"):
        DetectionService.from_config(serving_config(root), environ={})
