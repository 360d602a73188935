"""The evaluator end to end on a tiny manifest and a hand-weighted model that calls red images fake
(see flat_color_model.py for the images and their scores)."""
import csv
import dataclasses
import json
import logging

import pandas as pd
import pytest
from PIL import Image

from deepfake_detector.components.evaluation.evaluator import Evaluator
from deepfake_detector.components.evaluation.metrics import choose_threshold
from deepfake_detector.config.entities import EvaluationConfig
from deepfake_detector.contracts.errors import DataValidationError, ModelError
from deepfake_detector.contracts.scores import read_scores
from deepfake_detector.utils.files import sha256_file
from tests.pipeline.flat_color_model import (
    IMAGE_SIZE,
    TEST,
    TRAIN,
    VAL,
    p_fake,
    write_dataset,
    write_red_is_fake_model,
)


def make_config(root, model_file, threshold="eer", **trust):
    return EvaluationConfig(
        root_dir=root / "evaluation",
        model_file=model_file,
        manifest_file=root / "manifest.csv",
        dataset_dir=root / "dataset",
        scores_file=root / "scores.json",
        predictions_file=root / "evaluation" / "predictions.csv",
        plots_dir=root / "evaluation" / "plots",
        split_summary_file=root / "split_summary.json",
        training_run_file=root / "mlflow_run.json",
        image_size=IMAGE_SIZE,
        input_fit="crop",
        batch_size=4,
        threshold=threshold,
        calibration_bins=5,
        **trust,
    )


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.h5"
    write_red_is_fake_model(path)
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    write_dataset(root, {"val": VAL, "test": TEST, "train": TRAIN})
    return root


@pytest.fixture(scope="module")
def evaluation(project, model_file):
    return Evaluator(make_config(project, model_file)).run()


def test_scores_file_holds_every_metric_in_range(evaluation):
    scores = json.loads(evaluation.scores_file.read_text())
    scores.pop("model_sha256")
    assert scores == evaluation.scores
    for name in ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "average_precision",
                 "eer", "ece_positive_class", "ece_top_label", "ece_positive_class_uncalibrated",
                 "ece_top_label_uncalibrated", "threshold", "val_roc_auc"):
        assert 0.0 <= scores[name] <= 1.0, name
    assert scores["log_loss"] > 0
    assert scores["total_parameters"] == 4  # Dense(1) on 3 channels: 3 weights + 1 bias
    assert (scores["n_test"], scores["n_val"]) == (10, 10)


def test_tpr_at_one_percent_fpr_on_five_real_test_images_is_not_resolvable(evaluation):
    scores = evaluation.scores
    assert scores["tpr_at_fpr_1pct"] is None
    assert "not resolvable: 5 real images" in scores["tpr_at_fpr_1pct_note"]
    assert scores["fpr_resolution"] == pytest.approx(1 / 5)


def test_scores_say_how_the_threshold_and_temperature_came_about(evaluation):
    assert (evaluation.scores["threshold_rule"], evaluation.scores["temperature_status"]) == ("eer", "off")


def test_scores_say_the_model_learned_on_validation(evaluation):
    scores = evaluation.scores
    # 23 of 25 (fake, real) validation pairs are ranked right.
    assert scores["val_roc_auc"] == pytest.approx(23 / 25)
    assert 0.5 < scores["val_roc_auc_ci_low"] <= scores["val_roc_auc"] <= scores["val_roc_auc_ci_high"]
    assert scores["val_above_chance"] is True


def test_scores_file_names_the_model_it_measured(evaluation, model_file):
    scores = read_scores(evaluation.scores_file)
    assert scores.model_sha256 == evaluation.model_sha256 == sha256_file(model_file)
    assert scores.rule.threshold == evaluation.threshold


def test_eer_threshold_is_chosen_on_validation_not_test(evaluation):
    # Validation's EER point (at the fake 25) is reached down to the next score, 10; its middle in logit
    # space is 17.5, as the model's logit is proportional to red - green. Test's own would be near 5.
    assert evaluation.threshold == pytest.approx(p_fake(17.5), abs=1e-5)
    assert evaluation.threshold != pytest.approx(p_fake(5), abs=1e-3)


def test_threshold_matches_val_predictions_on_disk(evaluation):
    predictions = pd.read_csv(evaluation.predictions_file)
    val = predictions[predictions["split"] == "val"]
    assert evaluation.threshold == pytest.approx(choose_threshold(val["label"], val["p_fake"], "eer"))


def test_test_scores_apply_the_val_threshold_to_test(evaluation):
    assert evaluation.scores["accuracy"] == pytest.approx(7 / 10)
    assert evaluation.scores["precision"] == pytest.approx(3 / 4)
    assert evaluation.scores["recall"] == pytest.approx(3 / 5)


def test_predictions_cover_val_and_test_rows_only(evaluation):
    predictions = pd.read_csv(evaluation.predictions_file)
    assert list(predictions.columns) == ["path", "label", "split", "p_fake", "p_fake_uncalibrated", "predicted"]
    assert len(predictions) == len(VAL["fake"] + VAL["real"] + TEST["fake"] + TEST["real"])
    assert set(predictions["split"]) == {"val", "test"}
    assert (predictions["predicted"] == (predictions["p_fake"] >= evaluation.threshold)).all()


def test_predictions_match_the_hand_weighted_model(evaluation):
    predictions = pd.read_csv(evaluation.predictions_file).set_index("path")
    assert predictions.loc["fake/val_25.png", "p_fake"] == pytest.approx(p_fake(25), abs=1e-5)
    assert predictions.loc["real/val_-200.png", "p_fake"] == pytest.approx(p_fake(-200), abs=1e-5)


def test_plot_data_files_exist_and_parse(evaluation):
    files = evaluation.plot_files
    assert json.loads(files["roc.json"].read_text())["roc"]
    assert json.loads(files["precision_recall.json"].read_text())["precision_recall"]
    assert sum(b["count"] for b in json.loads(files["calibration.json"].read_text())["calibration"]) == 10
    with open(files["confusion.csv"], newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 10


def test_plot_images_exist_and_open(evaluation):
    for name in ("roc.png", "precision_recall.png", "calibration.png", "confusion_matrix.png",
                 "score_histogram.png"):
        with Image.open(evaluation.plot_files[name]) as image:
            assert image.format == "PNG", name


def test_youden_threshold_is_chosen_on_validation(project, model_file, tmp_path):
    config = dataclasses.replace(make_config(project, model_file, "youden"),
                                 scores_file=tmp_path / "scores.json",
                                 predictions_file=tmp_path / "predictions.csv", plots_dir=tmp_path / "plots")
    # Youden's point (at the fake 10) is reached down to the real 0: the middle is 5.
    assert Evaluator(config).run().threshold == pytest.approx(p_fake(5), abs=1e-5)


def test_numeric_threshold_is_used_as_is(project, model_file, tmp_path):
    config = dataclasses.replace(make_config(project, model_file, 0.5),
                                 scores_file=tmp_path / "scores.json",
                                 predictions_file=tmp_path / "predictions.csv", plots_dir=tmp_path / "plots")
    result = Evaluator(config).run()
    assert result.threshold == 0.5
    assert json.loads(result.scores_file.read_text())["threshold"] == 0.5
    assert result.scores["threshold_rule"] == "given"


def test_split_with_one_class_is_refused(model_file, tmp_path):
    write_dataset(tmp_path, {"val": {"fake": [100, 50], "real": []}, "test": TEST})
    with pytest.raises(DataValidationError, match="val split has no real images"):
        Evaluator(make_config(tmp_path, model_file)).run()


def test_missing_model_is_reported_with_the_stage_to_run(project, tmp_path):
    with pytest.raises(ModelError, match="run the train stage first"):
        Evaluator(make_config(project, tmp_path / "absent.h5")).run()


def test_model_for_another_image_size_is_refused(project, model_file):
    config = dataclasses.replace(make_config(project, model_file), image_size=64)
    with pytest.raises(ModelError, match="model.image_size is 64"):
        Evaluator(config).run()


@pytest.fixture(scope="module")
def calibrated(project, model_file, tmp_path_factory):
    root = tmp_path_factory.mktemp("calibrated")
    config = dataclasses.replace(make_config(project, model_file, bootstrap=300, calibrate=True, seed=3),
                                 scores_file=root / "scores.json", predictions_file=root / "predictions.csv",
                                 plots_dir=root / "plots")
    return Evaluator(config).run()


def test_calibration_changes_probabilities_but_not_ranking_or_decisions(evaluation, calibrated):
    plain, scores = evaluation.scores, calibrated.scores
    assert scores["temperature"] != pytest.approx(1.0, abs=1e-3)
    for name in ("roc_auc", "accuracy", "eer", "f1", "average_precision"):
        assert scores[name] == pytest.approx(plain[name]), name
    assert scores["threshold_uncalibrated"] == pytest.approx(plain["threshold"], abs=1e-6)
    assert scores["log_loss"] <= scores["log_loss_uncalibrated"] + 0.05
    predictions = pd.read_csv(calibrated.predictions_file)
    from deepfake_detector.contracts.temperature import apply_temperature
    assert predictions["p_fake"].to_numpy() == pytest.approx(
        apply_temperature(predictions["p_fake_uncalibrated"].to_numpy(), scores["temperature"]), abs=1e-9)
    assert (calibrated.plot_files["reliability.png"]).stat().st_size > 0


def test_bootstrap_intervals_bracket_each_headline_metric(calibrated):
    scores = calibrated.scores
    for name in ("accuracy", "roc_auc", "eer", "f1", "average_precision"):
        assert scores[f"{name}_ci_low"] <= scores[name] <= scores[f"{name}_ci_high"], name
    assert scores["accuracy_ci_low"] < scores["accuracy_ci_high"], "10 test images cannot pin accuracy exactly"


def run_on(tmp_path, model_file, splits, **settings):
    write_dataset(tmp_path, splits)
    return Evaluator(make_config(tmp_path, model_file, **settings)).run()


def test_separated_validation_puts_the_threshold_in_the_gap_and_keeps_temperature_one(model_file, tmp_path):
    # Validation: highest real -50, lowest fake 100; the middle in logit space is 25. The separable test
    # split's fakes at 60 and 30 lie below the lowest validation fake, and are still caught.
    result = run_on(tmp_path, model_file, {"val": {"fake": [100, 150, 200], "real": [-50, -100, -150]},
                                           "test": {"fake": [30, 60, 180], "real": [0, -20, -120]}},
                    calibrate=True)
    assert p_fake(-50) < result.threshold < p_fake(100)
    assert result.threshold == pytest.approx(p_fake(25), abs=1e-5)
    assert (result.scores["recall"], result.scores["accuracy"]) == (1.0, 1.0)
    assert (result.scores["temperature"], result.scores["temperature_status"]) == (1.0, "val_separated")


def test_a_model_at_chance_on_validation_is_called_out(model_file, tmp_path, caplog):
    # Fakes and reals interleave on validation: the red-is-fake rule ranks half the pairs right.
    splits = {"val": {"fake": [100, -100, 30, -30, 5], "real": [90, -90, 20, -20, 0]}, "test": TEST}
    with caplog.at_level(logging.WARNING):
        scores = run_on(tmp_path, model_file, splits).scores
    assert scores["val_roc_auc_ci_low"] <= 0.5 <= scores["val_roc_auc_ci_high"]
    assert scores["val_above_chance"] is False
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("THE MODEL DID NOT LEARN" in message and "includes 0.5" in message for message in warnings)
