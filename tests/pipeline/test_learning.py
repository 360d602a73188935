"""The real training path learns: prepare_model, train and evaluate's components on a small, clearly
learnable set must reach ROC AUC 0.9 on validation and test, so a useless or inverted model fails here.

Training is one planned epoch that train.min_steps stretches to several, with learning-rate drops set
to act at the first epoch without a better validation AUC and early stopping at the second: both
must wait until the minimum steps are done.
"""
from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest

from deepfake_detector.components.evaluation.evaluator import Evaluator
from deepfake_detector.components.model.factory import ModelPreparer
from deepfake_detector.components.model.trainer import Phase, Trainer, with_min_steps
from deepfake_detector.config.entities import EvaluationConfig
from tests.pipeline.trainer_helpers import IMAGE_SIZE, model_config, training_config, write_dataset

pytestmark = pytest.mark.slow

COUNTS = {"train": (48, 48), "val": (16, 16), "test": (16, 16)}
BATCH_SIZE = 8
MIN_STEPS = 120
LEARNED_AUC = 0.9


@pytest.fixture(scope="module")
def trained_and_evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("learning")
    dataset_dir, manifest = write_dataset(root, COUNTS, seed=5)
    base_model = ModelPreparer(model_config(root)).run().model_file
    config = training_config(root, base_model, dataset_dir, manifest, batch_size=BATCH_SIZE, fine_tune_epochs=1,
                             min_steps=MIN_STEPS, early_stopping_patience=2, reduce_lr_patience=0)
    training = Trainer(config).run()
    evaluation = Evaluator(EvaluationConfig(
        root_dir=root / "evaluation", model_file=training.model_file, manifest_file=manifest, dataset_dir=dataset_dir,
        scores_file=root / "scores.json", predictions_file=root / "evaluation" / "predictions.csv",
        plots_dir=root / "evaluation" / "plots", split_summary_file=root / "split_summary.json",
        training_run_file=root / "mlflow_run.json", image_size=IMAGE_SIZE,
        input_fit="crop", batch_size=32, threshold="eer",
        bootstrap=200)).run()
    with open(config.history_file, newline="") as handle:
        history = list(csv.DictReader(handle))
    return history, evaluation.scores, root, dataset_dir


def test_the_served_api_calls_a_known_fake_fake_and_a_known_real_real(trained_and_evaluated, tmp_path):
    """The trained model behind the real web app: held-out test images of each class get their class,
    at the P(fake) the evaluate stage measured for the same file (serving decodes as training did)."""
    from deepfake_detector.config import ConfigurationManager
    from deepfake_detector.serving.app_factory import create_app

    _, _, root, dataset_dir = trained_and_evaluated
    predictions = pd.read_csv(root / "evaluation" / "predictions.csv")
    test = predictions[predictions["split"] == "test"]
    known_fake = test[test["label"] == 1].sort_values("p_fake").iloc[-1]
    known_real = test[test["label"] == 0].sort_values("p_fake").iloc[0]
    serving = dataclasses.replace(
        ConfigurationManager(root=Path(__file__).resolve().parents[2]).get_serving_config(),
        model_file=root / "training" / "model.h5", export_dir=tmp_path / "no-export", scores_file=root / "scores.json",
        backend="keras", threshold=None, face_detector="off")
    client = create_app(serving, environ={}, retry_interval_s=None).test_client()

    verdicts = {}
    for expected, row in (("fake", known_fake), ("real", known_real)):
        with open(dataset_dir / row["path"], "rb") as image:
            answer = client.post("/api/v1/predict", data={"file": (image, Path(row["path"]).name)})
        assert answer.status_code == 200, answer.get_json()
        result = answer.get_json()["results"][0]
        verdicts[expected] = result["label"]
        assert result["fake_probability"] == pytest.approx(row["p_fake"], abs=1e-4)
    assert verdicts == {"fake": "fake", "real": "real"}


def test_the_trained_model_separates_validation(trained_and_evaluated):
    _, scores, _, _ = trained_and_evaluated
    assert scores["val_roc_auc"] >= LEARNED_AUC
    assert scores["val_above_chance"] is True


def test_the_trained_model_separates_the_held_out_test_split(trained_and_evaluated):
    _, scores, _, _ = trained_and_evaluated
    assert scores["roc_auc"] >= LEARNED_AUC
    assert scores["accuracy"] >= 0.8


def test_training_runs_until_the_minimum_steps_are_done(trained_and_evaluated):
    history, _, _, _ = trained_and_evaluated
    epochs = math.ceil(MIN_STEPS / math.ceil(sum(COUNTS["train"]) / BATCH_SIZE))
    assert [int(row["epoch"]) for row in history] == list(range(epochs))


def test_the_learning_rate_is_not_cut_before_the_minimum_steps(trained_and_evaluated):
    history, _, _, _ = trained_and_evaluated
    assert [float(row["learning_rate"]) for row in history] == pytest.approx([1e-3] * len(history))


def phase(name: str, epochs: int) -> Phase:
    return Phase(name, epochs, 1e-3, lambda model: None)


def test_min_steps_lengthen_the_last_phase_only():
    phases = with_min_steps([phase("head", 2), phase("fine_tune", 4)], steps_per_epoch=11, min_steps=140)
    # 6 planned epochs of 11 steps are 66; 74 more steps take 7 more epochs.
    assert [(p.name, p.epochs) for p in phases] == [("head", 2), ("fine_tune", 11)]


def test_enough_planned_steps_leave_the_phases_as_they_are():
    # The default run: 560 train images in batches of 16 are 35 steps, 4 epochs are 140.
    phases = with_min_steps([phase("fine_tune", 4)], steps_per_epoch=35, min_steps=140)
    assert [(p.name, p.epochs) for p in phases] == [("fine_tune", 4)]


def test_the_240_image_case_trains_as_many_steps_as_the_default_run():
    # A HardFake-layout archive of 240 images: 168 train images in batches of 16 are 11 steps per epoch.
    phases = with_min_steps([phase("fine_tune", 4)], steps_per_epoch=math.ceil(168 / 16), min_steps=140)
    assert phases[0].epochs == 13

