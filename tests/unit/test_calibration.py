"""Temperature scaling: recovers a known over-confidence, leaves calibrated models alone, never
changes a decision, refuses bad input, and draws the before/after reliability diagram."""
import json
import logging

import numpy as np
import pytest
from PIL import Image
from scipy.special import expit

from deepfake_detector.components.evaluation.calibration import (
    FITTED,
    VAL_SEPARATED,
    apply_temperature,
    calibrate_threshold,
    fit_temperature,
    negative_log_likelihood,
    write_reliability_diagram,
)
from deepfake_detector.components.evaluation.metrics import (
    calibration_bins,
    positive_class_ece,
    predict_labels,
    threshold_between,
)


def calibrated_split(seed=0, size=2000):
    """Labels drawn from a known model, and that model's (calibrated) P(fake) as float32 scores."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.5, size)
    labels = (rng.random(size) < expit(logits)).astype(np.int64)
    return labels, logits


@pytest.mark.parametrize("sharpening", [4.0, 0.5])
def test_fitted_temperature_undoes_a_known_distortion(sharpening):
    labels, logits = calibrated_split()
    distorted = expit(sharpening * logits).astype(np.float32)
    fit = fit_temperature(labels, distorted)
    assert fit.temperature == pytest.approx(sharpening, rel=0.1)
    assert fit.status == FITTED


def test_calibrating_an_over_confident_model_lowers_nll_and_ece():
    labels, logits = calibrated_split()
    over_confident = expit(4.0 * logits).astype(np.float32)
    calibrated = apply_temperature(over_confident, fit_temperature(labels, over_confident).temperature)
    assert negative_log_likelihood(labels, calibrated) < negative_log_likelihood(labels, over_confident) - 0.2
    assert positive_class_ece(labels, calibrated, 10) < positive_class_ece(labels, over_confident, 10) / 3


def test_an_already_calibrated_model_keeps_a_temperature_near_one():
    labels, logits = calibrated_split(seed=1)
    assert fit_temperature(labels, expit(logits)).temperature == pytest.approx(1.0, abs=0.1)


def test_temperature_of_one_returns_the_probabilities_unchanged():
    probs = np.array([0.0, 1e-9, 0.3, 0.5, 0.7, 1 - 1e-9, 1.0], dtype=np.float32)
    calibrated = apply_temperature(probs, 1.0)
    assert calibrated.dtype == np.float64
    np.testing.assert_array_equal(calibrated, probs)


def test_temperature_moves_probabilities_towards_or_away_from_one_half():
    probs = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    np.testing.assert_allclose(apply_temperature(probs, 2.0), [0.0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(apply_temperature(probs, 0.5), [0.0, 1 / 82, 0.5, 81 / 82, 1.0])


@pytest.mark.parametrize("temperature", [0.5, 0.9, 1.7, 4.0, float(np.exp(5))])
def test_decisions_at_the_calibrated_threshold_equal_the_raw_decisions(temperature):
    rng = np.random.default_rng(3)
    # float32 like the model's outputs, with exact 0/1, values a float32 step from 0 and 1, and ties.
    probs = np.concatenate([rng.random(500, dtype=np.float32),
                            np.float32([0.0, 1.0, 1.0, 1 - 2**-24, 1 - 2**-23, 2**-149, 1e-30, 0.5, 0.5])])
    calibrated = apply_temperature(probs, temperature)
    thresholds = [*probs[::25], 1 - 2**-24, 1.0, 0.0, 0.5, 1e-30, 1.5, -0.2]
    for threshold in thresholds:
        np.testing.assert_array_equal(
            predict_labels(calibrated, calibrate_threshold(threshold, temperature)),
            predict_labels(probs, threshold), err_msg=f"threshold {threshold!r}")


def test_calibration_keeps_the_order_of_the_scores():
    probs = np.sort(np.random.default_rng(4).random(300))
    assert (np.diff(apply_temperature(probs, 3.0)) > 0).all()


def test_a_perfectly_separated_validation_split_keeps_the_model_probabilities_and_warns(caplog):
    """No finite temperature exists there: sharpening without end would round every score to 0 or 1
    and tie scores the model ranks apart."""
    with caplog.at_level(logging.WARNING, logger="deepfake_detector.components.evaluation.calibration"):
        fit = fit_temperature([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1])
    assert (fit.temperature, fit.status) == (1.0, VAL_SEPARATED)
    assert "separated perfectly" in caplog.text and "temperature 1.0" in caplog.text


@pytest.mark.parametrize(("labels", "probs", "message"), [
    ([], [], "cannot fit a temperature: no labels to score"),
    ([1, 1, 1], [0.2, 0.6, 0.9], "cannot fit a temperature: scores need both classes"),
    ([1, 0], [1.2, 0.1], "cannot fit a temperature: probabilities must lie in [0, 1], got 0.1 to 1.2"),
    ([1, 0], [float("nan"), 0.1], "cannot fit a temperature: scores must be finite"),
    ([1, 0, 1], [0.9, 0.1], "cannot fit a temperature: 3 labels but 2 scores"),
    ([1, 2], [0.9, 0.1], "cannot fit a temperature: labels must be 0 (real) or 1 (fake)"),
])
def test_bad_validation_data_is_refused_with_the_problem_named(labels, probs, message):
    with pytest.raises(ValueError) as error:
        fit_temperature(labels, probs)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf")])
def test_a_temperature_that_is_not_positive_and_finite_is_refused(temperature):
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        apply_temperature([0.2, 0.8], temperature)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        calibrate_threshold(0.5, temperature)


def test_probabilities_outside_zero_one_cannot_be_calibrated():
    with pytest.raises(ValueError, match=r"probabilities must lie in \[0, 1\]"):
        apply_temperature([0.2, 1.5], 2.0)


def test_negative_log_likelihood_matches_a_hand_computation():
    # -(log 0.8 + log 0.9) / 2, and a confidently wrong 0 costs -log(1e-7), not infinity.
    assert negative_log_likelihood([1, 0], [0.8, 0.1]) == pytest.approx(-(np.log(0.8) + np.log(0.9)) / 2)
    assert negative_log_likelihood([1, 0], [0.0, 0.0]) == pytest.approx(-np.log(1e-7) / 2, rel=1e-6)


@pytest.mark.parametrize("temperature", [0.3, 0.8, 2.5, 12.0])
def test_calibrated_middle_threshold_is_the_middle_of_the_calibrated_interval(temperature):
    """Raw and calibrated rules stay one point: the middle is taken in logit space, where the
    temperature is a plain division."""
    lower, upper = 0.206, 0.6644
    middle = threshold_between(lower, upper)
    calibrated = calibrate_threshold(middle, temperature)
    assert calibrated == pytest.approx(threshold_between(calibrate_threshold(lower, temperature),
                                                         calibrate_threshold(upper, temperature)), rel=1e-12)


@pytest.fixture(scope="module")
def diagram(tmp_path_factory):
    labels, logits = calibrated_split(size=400)
    before = expit(4.0 * logits)
    after = apply_temperature(before, 4.0)
    folder = tmp_path_factory.mktemp("reliability")
    paths = write_reliability_diagram(labels, before, after, 10, folder / "reliability.png",
                                      folder / "reliability.json")
    return labels, before, after, folder, paths


def test_reliability_data_holds_each_non_empty_bin_of_both_curves(diagram):
    labels, before, after, folder, (_, json_file) = diagram
    records = json.loads(json_file.read_text(encoding="utf-8"))
    for curve, probs in (("before", before), ("after", after)):
        expected = [{"mean_predicted": b["mean_predicted"], "fraction_positive": b["fraction_positive"],
                     "count": b["count"], "curve": curve} for b in calibration_bins(labels, probs, 10)]
        assert [r for r in records if r["curve"] == curve] == expected
        assert sum(r["count"] for r in records if r["curve"] == curve) == len(labels)
    assert {r["curve"] for r in records} == {"before", "after"}


def test_reliability_diagram_is_a_png_and_no_temporary_files_remain(diagram):
    *_, folder, (png_file, json_file) = diagram
    with Image.open(png_file) as image:
        assert image.format == "PNG"
        assert image.width > 300 and image.height > 300
    assert sorted(p.name for p in folder.iterdir()) == ["reliability.json", "reliability.png"]


def test_reliability_diagram_refuses_curves_of_another_length(tmp_path):
    with pytest.raises(ValueError, match=r"after calibration\): 4 labels but 3 scores"):
        write_reliability_diagram([1, 0, 1, 0], [0.9, 0.1, 0.8, 0.3], [0.9, 0.1, 0.8], 10,
                                  tmp_path / "r.png", tmp_path / "r.json")
    assert not list(tmp_path.iterdir())
