"""The model card says what happened: a threshold is "chosen on the validation split" only when it was,
a temperature "fitted" only when it was, and a model that did not learn says so first."""
import pytest

from deepfake_detector.components.evaluation.learning import LearningCheck
from deepfake_detector.components.export.model_card import build_model_card, render_markdown
from deepfake_detector.contracts.decision_rule import DecisionRule

LEARNED = LearningCheck(roc_auc=0.99, ci_low=0.97, ci_high=1.0, n=120)
AT_CHANCE = LearningCheck(roc_auc=0.5, ci_low=0.31, ci_high=0.69, n=36)
CHOSEN_ON_VAL = "chosen on the validation split"
FITTED_ON_VAL = "fitted on the validation split"


def card_text(threshold_rule="eer", temperature_status="fitted", temperature=1.4, learning=LEARNED,
              test_metrics=None, model=None):
    card = build_model_card(
        params={"model": model or {"alpha": 0.35, "dropout": 0.2, "weights": "none"}}, image_size=32,
        total_parameters=4,
        rule=DecisionRule(0.42, temperature), rule_origin={"threshold_rule": threshold_rule,
                                                           "temperature_status": temperature_status},
        test_metrics=test_metrics or {"roc_auc": 0.98}, learning=learning, exports={},
        source={"file": "model.h5", "sha256": "0" * 64}, dataset={"source": "demo"}, git={"commit": "abc"})
    return card, render_markdown(card)


@pytest.mark.parametrize(("rule", "named"), [("eer", "the equal error rate"), ("youden", "Youden's J")])
def test_a_threshold_picked_on_validation_says_so_and_by_which_rule(rule, named):
    card, text = card_text(threshold_rule=rule)
    assert card["output"]["threshold_rule"] == rule
    assert f"{CHOSEN_ON_VAL} by {named}" in text


def test_a_threshold_given_in_params_is_stated_as_given_not_as_chosen():
    _, text = card_text(threshold_rule="given")
    assert "given in params.yaml (`evaluate.threshold`), not chosen on data" in text
    assert CHOSEN_ON_VAL not in text


def test_a_fitted_temperature_is_called_fitted():
    _, text = card_text()
    assert f"Calibration: temperature 1.400, {FITTED_ON_VAL}" in text


@pytest.mark.parametrize(("status", "said"), [
    ("val_separated", "not fitted, because the model separates the validation split perfectly"),
    ("off", "off (evaluate.calibrate is false)"),
])
def test_a_temperature_that_was_not_fitted_says_why(status, said):
    card, text = card_text(temperature_status=status, temperature=1.0)
    assert card["output"]["temperature_status"] == status
    assert said in text
    assert FITTED_ON_VAL not in text


def test_scores_without_the_rule_origin_say_it_is_not_recorded():
    _, text = card_text(threshold_rule=None, temperature_status=None)
    assert text.count("not recorded in scores.json; rerun the evaluate stage") == 2
    assert CHOSEN_ON_VAL not in text and FITTED_ON_VAL not in text


def test_a_model_that_did_not_learn_is_flagged_at_the_top_of_the_card():
    card, text = card_text(learning=AT_CHANCE)
    assert card["validation"]["above_chance"] is False
    first_lines = text.splitlines()[:3]
    assert first_lines[2].startswith("> **Warning:** THE MODEL DID NOT LEARN: validation ROC AUC 0.500 "
                                     "(95 % interval 0.310 – 0.690, 36 images) includes 0.5")
    assert "**not above chance (0.5)**" in text


def test_a_model_that_learned_carries_no_warning():
    card, text = card_text()
    assert card["warnings"] == []
    assert "Warning" not in text
    assert "Validation ROC AUC 0.9900 (95 % stratified bootstrap interval 0.9700 – 1.0000, 120 images): " \
           "above chance." in text


def test_an_unresolvable_low_fpr_metric_shows_its_reason_instead_of_a_number():
    note = "not resolvable: 60 real images resolve false positive rates in steps of 1/60 = 0.017"
    _, text = card_text(test_metrics={"tpr_at_fpr_1pct": None, "tpr_at_fpr_1pct_note": note})
    assert f"| tpr_at_fpr_1pct | {note} |  |" in text


@pytest.mark.parametrize(("fit", "said"), [("crop", "the center 32x32 crop at the image's own resolution"),
                                           ("resize", "bilinear resize with antialiasing to 32x32")])
def test_the_card_records_how_images_are_fitted_to_the_model(fit, said, tmp_path):
    import json

    from deepfake_detector.contracts.model_card import read_model_card

    card, text = card_text(model={"alpha": 0.35, "dropout": 0.2, "weights": "none", "input_fit": fit})
    assert card["input"]["fit"] == fit
    assert said in text
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    assert read_model_card(tmp_path).input_fit == fit
