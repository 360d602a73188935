"""Robustness scoring: a fixed detector of fine checkerboard patterns is perfect on clean images and
fooled by blur and down-scaling; the outputs have the shapes dvc and the report read; runs repeat."""
from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deepfake_detector.components.data.datasets import build_dataset
from deepfake_detector.components.evaluation.robustness import (
    RobustnessEvaluator,
    perturbed_dataset,
    score_under_perturbations,
    write_robustness_outputs,
)
from deepfake_detector.config.entities import RobustnessConfig
from deepfake_detector.contracts.errors import ModelError
from deepfake_detector.contracts.labels import FAKE, REAL
from tests.pipeline.flat_color_model import IMAGE_SIZE as FLAT_IMAGE_SIZE
from tests.pipeline.flat_color_model import TEST, write_dataset, write_red_is_fake_model

NATIVE = 40      # images are written at this size and degraded at it ...
IMAGE_SIZE = 32  # ... then resized to the model's input size
SEVERITIES = {"blur": (0.5, 2.0), "rescale": (0.75, 0.25), "noise": (5.0,), "jpeg": (30,)}
SETTINGS = dict(image_size=IMAGE_SIZE, input_fit="crop", batch_size=5, severities=SEVERITIES, threshold=0.5, seed=11)


def write_images(folder, count: int = 16) -> tuple[list[str], list[int]]:
    """Random smooth color gradients; the fakes carry a 2-pixel checkerboard on top. PNG and
    high-quality JPEG alternate independently of the label."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:NATIVE, 0:NATIVE].astype("float64")
    checkerboard = np.where(((x // 2) + (y // 2)) % 2 == 0, 25.0, -25.0)[..., None]
    paths, labels = [], []
    for index in range(count):
        label = FAKE if index % 2 else REAL
        slope = rng.uniform(-1.5, 1.5, (2, 3))
        image = rng.uniform(60, 190, 3) + x[..., None] * slope[0] + y[..., None] * slope[1]
        if label == FAKE:
            image = image + checkerboard
        suffix = "png" if (index // 2) % 2 else "jpg"
        path = folder / f"image_{index:02d}.{suffix}"
        Image.fromarray(np.clip(np.round(image), 0, 255).astype("uint8")).save(path, quality=95)
        paths.append(str(path))
        labels.append(label)
    return paths, labels


def checkerboard_detector() -> keras.Model:
    """No training: P(fake) = sigmoid((mean |Laplacian of gray| - 40) / 10); a 2-pixel checkerboard
    of amplitude 25 gives about 100, a smooth gradient about 0."""
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    gray = keras.layers.Conv2D(1, 1, use_bias=False, trainable=False)
    laplacian = keras.layers.Conv2D(1, 3, padding="valid", use_bias=False, trainable=False)
    decide = keras.layers.Dense(1, activation="sigmoid", trainable=False)
    energy = keras.layers.GlobalAveragePooling2D()(keras.layers.Lambda(keras.ops.abs)(laplacian(gray(inputs))))
    model = keras.Model(inputs, decide(energy))
    gray.set_weights([np.full((1, 1, 3, 1), 1 / 3, np.float32)])
    laplacian.set_weights([np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32).reshape(3, 3, 1, 1)])
    decide.set_weights([np.array([[0.1]], np.float32), np.array([-4.0], np.float32)])
    return model


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("robustness"))


@pytest.fixture(scope="module")
def model():
    return checkerboard_detector()


@pytest.fixture(scope="module")
def table(images, model):
    return score_under_perturbations(model, *images, **SETTINGS)


def auc(table, perturbation, severity=None):
    rows = table[table["perturbation"] == perturbation]
    if severity is not None:
        rows = rows[rows["severity"] == severity]
    return float(rows["roc_auc"].item())


def test_table_has_the_clean_row_first_then_every_condition(table):
    assert list(table.columns[:6]) == ["perturbation", "severity", "roc_auc", "accuracy", "eer", "n"]
    conditions = list(zip(table["perturbation"], table["severity"], strict=True))
    assert conditions == [("none", None), ("blur", 0.5), ("blur", 2.0), ("rescale", 0.75),
                          ("rescale", 0.25), ("noise", 5.0), ("jpeg", 30.0)]
    assert (table["n"] == 16).all()


def test_clean_images_are_separated_perfectly(table):
    clean = table.iloc[0]
    assert clean["roc_auc"] == 1.0 and clean["accuracy"] == 1.0 and clean["eer"] == 0.0


def test_heavy_blur_and_down_scaling_fool_the_detector(table):
    assert auc(table, "blur", 0.5) > 0.9
    assert auc(table, "blur", 2.0) < 0.75
    assert auc(table, "rescale", 0.25) < 0.75
    harsh = table[(table["perturbation"] == "blur") & (table["severity"] == 2.0)]
    assert harsh["accuracy"].item() <= 0.6


@pytest.mark.parametrize("fit", ["crop", "resize"])
def test_clean_condition_feeds_the_model_what_training_feeds_it(images, fit):
    paths, labels = images
    clean = np.concatenate(list(perturbed_dataset(paths, image_size=IMAGE_SIZE, input_fit=fit, batch_size=5,
                                                  perturbation="none", severity=None, seed=0).as_numpy_iterator()))
    training = np.concatenate([x for x, _ in build_dataset(paths, labels, IMAGE_SIZE, 5, fit=fit)
                               .as_numpy_iterator()])
    np.testing.assert_array_equal(clean, training)


def test_scores_repeat_exactly_for_the_same_seed(table, images, model):
    pd.testing.assert_frame_equal(score_under_perturbations(model, *images, **SETTINGS), table)


def test_unknown_perturbation_is_refused_before_scoring(images, model):
    with pytest.raises(ValueError, match="unknown perturbation 'gauss'"):
        score_under_perturbations(model, *images, **{**SETTINGS, "severities": {"gauss": (1.0,)}})


def test_outputs_have_the_shapes_dvc_and_the_report_read(table, tmp_path):
    metrics_file, plot_file, png_file = tmp_path / "m" / "robustness.json", tmp_path / "robustness_plot.json", \
        tmp_path / "robustness.png"
    write_robustness_outputs(table, metrics_file, plot_file, png_file)

    metrics = json.loads(metrics_file.read_text())
    assert list(metrics) == ["clean", "blur", "rescale", "noise", "jpeg"]
    assert metrics["clean"] == {"roc_auc": 1.0, "accuracy": 1.0, "eer": 0.0}
    assert list(metrics["blur"]) == ["0.5", "2"] and list(metrics["jpeg"]) == ["30"]
    assert metrics["rescale"]["0.25"]["roc_auc"] == auc(table, "rescale", 0.25)

    records = json.loads(plot_file.read_text())
    assert [record["severity_level"] for record in records] == [1, 2]
    assert records[0] == {"severity_level": 1, "blur": auc(table, "blur", 0.5), "rescale": auc(table, "rescale", 0.75),
                          "noise": auc(table, "noise", 5.0), "jpeg": auc(table, "jpeg", 30)}
    assert records[1] == {"severity_level": 2, "blur": auc(table, "blur", 2.0), "rescale": auc(table, "rescale", 0.25),
                          "noise": None, "jpeg": None}

    with Image.open(png_file) as png:
        assert png.format == "PNG" and png.width > 600 and png.height > 300
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["m", "robustness.json", "robustness.png",
                                                           "robustness_plot.json"]


def test_stage_scores_the_test_split_at_the_raw_threshold_of_scores_json(tmp_path):
    """scores.json's calibrated threshold (0.99) would call one test image fake; the raw-output one
    (P(fake) >= 0.5, red at least as strong as green) calls four fakes and one real fake: 8 of 10 right."""
    write_dataset(tmp_path, {"test": TEST})
    write_red_is_fake_model(tmp_path / "model.h5")
    (tmp_path / "scores.json").write_text(json.dumps({"threshold": 0.99, "temperature": 2.0,
                                                      "threshold_uncalibrated": 0.5}))
    out = tmp_path / "robustness"
    config = RobustnessConfig(
        model_file=tmp_path / "model.h5", manifest_file=tmp_path / "manifest.csv", dataset_dir=tmp_path / "dataset",
        scores_file=tmp_path / "scores.json", metrics_file=out / "robustness.json",
        plot_file=out / "robustness_plot.json", png_file=out / "robustness.png",
        training_run_file=tmp_path / "mlflow_run.json", image_size=FLAT_IMAGE_SIZE, input_fit="crop", batch_size=4,
        severities={"jpeg": (50,)}, seed=0)

    result = RobustnessEvaluator(config).run()

    assert list(result.roc_auc_by_condition) == ["none", "jpeg_50"]
    assert result.table.iloc[0]["accuracy"] == pytest.approx(0.8)
    assert all(path.is_file() for path in result.files)
    assert json.loads(config.metrics_file.read_text())["clean"]["accuracy"] == pytest.approx(0.8)


def test_stage_without_scores_json_says_to_run_evaluate(tmp_path):
    write_dataset(tmp_path, {"test": TEST})
    write_red_is_fake_model(tmp_path / "model.h5")
    config = RobustnessConfig(
        model_file=tmp_path / "model.h5", manifest_file=tmp_path / "manifest.csv", dataset_dir=tmp_path / "dataset",
        scores_file=tmp_path / "scores.json", metrics_file=tmp_path / "m.json", plot_file=tmp_path / "p.json",
        png_file=tmp_path / "r.png", training_run_file=tmp_path / "run.json", image_size=FLAT_IMAGE_SIZE,
        input_fit="crop",
        batch_size=4, severities={"jpeg": (50,)}, seed=0)
    with pytest.raises(ModelError, match="run the evaluate stage first"):
        RobustnessEvaluator(config).run()
    assert not (tmp_path / "m.json").exists()
