"""The evaluator end to end on a tiny manifest and a hand-weighted model that calls red images fake.

Each image is one flat colour; the model outputs P(fake) = sigmoid(STEEPNESS * (red - green) / 255),
so an image's score is set by its red-minus-green difference, listed below per split.
"""
import csv
import dataclasses
import json
import math

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deepfake_detector.components.evaluator import Evaluator
from deepfake_detector.components.metrics import choose_threshold
from deepfake_detector.entity import EvaluationConfig
from deepfake_detector.exceptions import DataValidationError, ModelError

IMAGE_SIZE = 32
STEEPNESS = 8.0

# Validation, ranked by red - green: 200F 150F 100F 50R 25F 10F 0R -50R -150R -200R.
#   at 25: TPR 4/5, FPR 1/5 -> FPR = FNR: the EER threshold is p(25)
#   at 10: TPR 1,   FPR 1/5 -> J = 0.8, the largest: the Youden threshold is p(10)
VAL = {"fake": [200, 150, 100, 25, 10], "real": [50, 0, -50, -150, -200]}
# Test, ranked: 180F 120F 75R 60F 5F -25R -90R -100F -120R -180R. Its own EER threshold would
# be p(5). At the val threshold p(25): TP 3 (180, 120, 60), FN 2, FP 1 (75), TN 4.
TEST = {"fake": [180, 120, 60, 5, -100], "real": [75, -25, -90, -120, -180]}
TRAIN = {"fake": [90], "real": [-90]}
JPEG_DIFFERENCES = {("test", 180), ("test", -180), ("train", 90)}  # far from any threshold


def p_fake(difference):
    return 1.0 / (1.0 + math.exp(-STEEPNESS * difference / 255.0))


def write_flat_image(path, difference, image_format):
    red = 128 + difference // 2
    Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (red, red - difference, 64)).save(path, format=image_format)


def write_dataset(root, splits):
    """Images under root/dataset/<class>/ and root/manifest.csv listing them."""
    rows = []
    for split, classes in splits.items():
        for class_name, differences in classes.items():
            (root / "dataset" / class_name).mkdir(parents=True, exist_ok=True)
            for difference in differences:
                is_jpeg = (split, difference) in JPEG_DIFFERENCES
                relative = f"{class_name}/{split}_{difference}.{'jpg' if is_jpeg else 'png'}"
                write_flat_image(root / "dataset" / relative, difference, "JPEG" if is_jpeg else "PNG")
                rows.append({"path": relative, "label": int(class_name == "fake"), "split": split,
                             "sha256": f"{split}{difference}", "group": f"{split}{difference}"})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)


def write_red_is_fake_model(path):
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(1, activation="sigmoid")
    model = keras.Model(inputs, dense(x))
    dense.set_weights([np.array([[STEEPNESS], [-STEEPNESS], [0.0]]), np.zeros(1)])
    model.save(path)


def make_config(root, model_file, threshold="eer"):
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
        batch_size=4,
        threshold=threshold,
        calibration_bins=5,
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
    assert scores == pytest.approx(evaluation.scores)
    for name in ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc",
                 "average_precision", "eer", "tpr_at_fpr_1pct", "ece", "threshold"):
        assert 0.0 <= scores[name] <= 1.0, name
    assert scores["log_loss"] > 0
    assert scores["total_parameters"] == 4  # Dense(1) on 3 channels: 3 weights + 1 bias
    assert (scores["n_test"], scores["n_val"]) == (10, 10)
    assert all(isinstance(value, (int, float)) for value in scores.values())


def test_eer_threshold_is_chosen_on_validation_not_test(evaluation):
    assert evaluation.threshold == pytest.approx(p_fake(25), abs=1e-5)
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
    assert list(predictions.columns) == ["path", "label", "split", "p_fake", "predicted"]
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
    assert Evaluator(config).run().threshold == pytest.approx(p_fake(10), abs=1e-5)


def test_numeric_threshold_is_used_as_is(project, model_file, tmp_path):
    config = dataclasses.replace(make_config(project, model_file, 0.5),
                                 scores_file=tmp_path / "scores.json",
                                 predictions_file=tmp_path / "predictions.csv", plots_dir=tmp_path / "plots")
    result = Evaluator(config).run()
    assert result.threshold == 0.5
    assert json.loads(result.scores_file.read_text())["threshold"] == 0.5


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
