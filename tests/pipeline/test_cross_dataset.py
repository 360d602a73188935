"""Cross-dataset evaluation: extra sets are ingested into their own folders, cleaned like the
validate stage would, and scored with the trained model beside the in-distribution reference."""
from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from deepfake_detector.components.data.demo_data import generate_demo_dataset
from deepfake_detector.components.evaluation.cross_dataset import (
    SUMMARY_GROUP,
    CrossDatasetEvaluator,
    face_crops_of_extra_set,
    predict_extra_sets,
    prepare_extra_set,
    score_extra_sets,
    write_cross_dataset,
)
from deepfake_detector.components.evaluation.generalization import TrainingSources
from deepfake_detector.config.entities import CrossDatasetConfig, DataIngestionConfig, ExtraSetConfig, FaceCropSettings
from deepfake_detector.contracts.errors import IngestionError, ModelError
from deepfake_detector.contracts.labels import FAKE, REAL
from deepfake_detector.utils.files import sha256_file
from tests.pipeline.flat_color_model import IMAGE_SIZE, write_flat_image, write_red_is_fake_model
from tests.unit.ingest_fixtures import make_config

METRICS = ("roc_auc", "accuracy", "eer", "average_precision")
INTERVALS = [f"{metric}_ci_{end}" for metric in METRICS for end in ("low", "high")]
ROW_KEYS = ["name", "source", "seen", "n", "n_fake", "n_real",
            *(key for metric in METRICS for key in (metric, f"{metric}_ci_low", f"{metric}_ci_high")), "note"]
# The model scores red - green: ranked 100F 50F 30R -20F -100R, so 5 of the 6 fake-real pairs are
# in order (ROC AUC 5/6), and at P(fake) >= 0.5 (a difference >= 0) 3 of 5 are right.
FOLDER_SET = {"fake": [100, 50, -20], "real": [30, -100]}


def ingestion_config(tmp_path: Path) -> DataIngestionConfig:
    """The training set's ingestion settings, with a tiny demo."""
    config = make_config(tmp_path, "demo")
    return replace(config, demo=replace(config.demo, images_per_class=8, image_size=64, seed=5))


def write_folder_set(root: Path, differences: dict[str, list[int]]) -> Path:
    for class_name, values in differences.items():
        (root / class_name).mkdir(parents=True, exist_ok=True)
        for value in values:
            write_flat_image(root / class_name / f"flat_{value}.png", value, "PNG")
    return root


@pytest.fixture(scope="module")
def demo_b_set(tmp_path_factory) -> tuple[pd.DataFrame, Path, DataIngestionConfig]:
    tmp_path = tmp_path_factory.mktemp("demo_b")
    ingestion = ingestion_config(tmp_path)
    work_dir = tmp_path / "extra"
    frame = prepare_extra_set(ExtraSetConfig("style_b", "demo:b"), ingestion, work_dir, min_image_size=32)
    return frame, work_dir, ingestion


def test_demo_extra_set_is_ingested_into_its_own_folder_with_both_classes(demo_b_set) -> None:
    frame, work_dir, _ = demo_b_set
    assert list(frame.columns) == ["path", "label"]
    assert frame["label"].value_counts().to_dict() == {FAKE: 8, REAL: 8}
    paths = [Path(path) for path in frame["path"]]
    assert all(path.is_absolute() and path.is_file() for path in paths)
    assert all(path.is_relative_to(work_dir / "style_b" / "dataset") for path in paths)
    report = json.loads((work_dir / "style_b" / "ingest.json").read_text(encoding="utf-8"))
    assert report["source"] == "demo:b"


def test_demo_extra_set_is_style_b_drawn_with_the_next_seed(demo_b_set, tmp_path: Path) -> None:
    frame, _, ingestion = demo_b_set
    generate_demo_dataset(replace(ingestion.demo, style="b", seed=ingestion.demo.seed + 1), tmp_path / "next")
    generate_demo_dataset(replace(ingestion.demo, style="b"), tmp_path / "same")
    for path, label in zip(frame["path"], frame["label"], strict=True):
        name = Path(path).name
        folder = "fake" if label == FAKE else "real"
        assert Path(path).parent.name == folder
        assert Path(path).read_bytes() == (tmp_path / "next" / folder / name).read_bytes()
        assert Path(path).read_bytes() != (tmp_path / "same" / folder / name).read_bytes()


def test_folder_extra_set_drops_unusable_images_and_says_how_many(tmp_path: Path, caplog) -> None:
    source = write_folder_set(tmp_path / "other", FOLDER_SET)
    (source / "real" / "empty.png").write_bytes(b"")
    Image.new("RGB", (IMAGE_SIZE // 2, IMAGE_SIZE // 2)).save(source / "fake" / "too_small.png")
    with caplog.at_level(logging.WARNING, logger="deepfake_detector.components.evaluation.cross_dataset"):
        frame = prepare_extra_set(ExtraSetConfig("other", str(source)), ingestion_config(tmp_path),
                                  tmp_path / "extra", min_image_size=IMAGE_SIZE)
    assert sorted(Path(path).name for path in frame["path"]) == sorted(
        f"flat_{value}.png" for values in FOLDER_SET.values() for value in values)
    assert frame["label"].value_counts().to_dict() == {FAKE: 3, REAL: 2}
    assert "dropped 2 of 7 images" in caplog.text


@pytest.mark.parametrize("name", ["../escape", "a/b", "", "..", "with space", "naïve"])
def test_unsafe_set_name_is_refused_before_anything_is_written(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="safe folder name"):
        prepare_extra_set(ExtraSetConfig(name, "demo:b"), ingestion_config(tmp_path), tmp_path / "extra",
                          min_image_size=32)
    assert not (tmp_path / "extra").exists()


def test_bad_extra_source_names_its_setting(tmp_path: Path) -> None:
    with pytest.raises(IngestionError, match=r"evaluate\.extra_sets\[other\]\.source 'demo:z'.*a, b"):
        prepare_extra_set(ExtraSetConfig("other", "demo:z"), ingestion_config(tmp_path), tmp_path / "extra",
                          min_image_size=32)
    assert not (tmp_path / "extra").exists()


@pytest.fixture(scope="module")
def red_is_fake_model(tmp_path_factory):
    import keras

    path = tmp_path_factory.mktemp("model") / "model.keras"
    write_red_is_fake_model(path)
    return keras.models.load_model(path, compile=False)


def flat_set(root: Path, differences: dict[str, list[int]]) -> pd.DataFrame:
    write_folder_set(root, differences)
    return pd.DataFrame([{"path": str(root / class_name / f"flat_{value}.png"), "label": int(class_name == "fake")}
                         for class_name, values in differences.items() for value in values])


def score_sets(model, sets: dict[str, pd.DataFrame], sources: dict[str, str], training=("demo",),
               resamples: int = 0) -> list[dict]:
    predictions = predict_extra_sets(model, sets, image_size=IMAGE_SIZE, batch_size=4, input_fit="crop")
    return score_extra_sets(predictions, threshold=0.5, sources=sources, training=TrainingSources(training, "a"),
                            resamples=resamples, seed=0)


def test_each_set_gets_one_row_with_its_counts_and_scores(tmp_path: Path, red_is_fake_model, demo_b_set) -> None:
    sets = {"flat": flat_set(tmp_path / "flat", FOLDER_SET), "style_b": demo_b_set[0]}
    rows = score_sets(red_is_fake_model, sets, {"flat": "inputs/flat", "style_b": "demo:b"}, resamples=50)

    assert [row["name"] for row in rows] == ["flat", "style_b"]
    assert all(list(row) == ROW_KEYS for row in rows)
    flat, style_b = rows
    assert (flat["source"], flat["n"], flat["n_fake"], flat["n_real"]) == ("inputs/flat", 5, 3, 2)
    assert flat["roc_auc"] == pytest.approx(5 / 6)
    assert flat["accuracy"] == pytest.approx(3 / 5)
    assert flat["note"] is None
    assert (style_b["n"], style_b["n_fake"], style_b["n_real"]) == (16, 8, 8)
    assert all(0.0 <= style_b[key] <= 1.0 for key in (*METRICS, *INTERVALS))
    assert not flat["seen"] and not style_b["seen"]  # trained on demo:a only


def test_a_one_class_set_gets_accuracy_only_with_a_note(tmp_path: Path, red_is_fake_model) -> None:
    sets = {"fakes": flat_set(tmp_path / "fakes", {"fake": [100, 50, -20]})}
    (row,) = score_sets(red_is_fake_model, sets, {"fakes": "inputs/fakes"}, resamples=50)
    assert (row["n"], row["n_fake"], row["n_real"]) == (3, 3, 0)
    assert row["accuracy"] == pytest.approx(2 / 3)
    assert (row["roc_auc"], row["eer"], row["average_precision"]) == (None, None, None)
    assert [row[key] for key in INTERVALS] == [None] * len(INTERVALS)
    assert "only fake images" in row["note"]


def test_json_holds_the_reference_row_the_sets_and_the_summary(tmp_path: Path) -> None:
    reference = {"name": "test", "source": "demo", "n": 120, "roc_auc": 0.99, "accuracy": 0.97}
    sets = [{"name": "style_b", "source": "demo:b", "n": 16, "roc_auc": 0.61, "accuracy": 0.5}]
    summary = {"n_sets": 1, "mean_roc_auc": 0.61}
    path = write_cross_dataset(sets, tmp_path / "evaluation" / "cross_dataset.json", reference, summary)
    assert json.loads(path.read_text(encoding="utf-8")) == {"reference": reference, "sets": sets, "summary": summary}
    assert [p.name for p in path.parent.iterdir()] == ["cross_dataset.json"]


def stage_config(tmp_path: Path, extra_sets: tuple[ExtraSetConfig, ...], bootstrap: int = 0) -> CrossDatasetConfig:
    (tmp_path / "scores.json").write_text(json.dumps({
        "threshold": 0.99, "temperature": 2.0, "threshold_uncalibrated": 0.5, "n_test": 120, "roc_auc": 0.97,
        "accuracy": 0.9, "eer": 0.08, "average_precision": 0.96, "model_sha256": "ab" * 32}))
    return CrossDatasetConfig(root_dir=tmp_path / "extra", results_file=tmp_path / "cross_dataset.json",
                              model_file=tmp_path / "model.keras", scores_file=tmp_path / "scores.json",
                              training_run_file=tmp_path / "mlflow_run.json", ingestion=ingestion_config(tmp_path),
                              min_image_size=IMAGE_SIZE, image_size=IMAGE_SIZE,
                              input_fit="crop", batch_size=4, extra_sets=extra_sets,
                              bootstrap=bootstrap, seed=0)


def test_stage_without_extra_sets_writes_the_reference_row_and_needs_no_model(tmp_path: Path) -> None:
    result = CrossDatasetEvaluator(stage_config(tmp_path, ()), reference_source="demo").run()
    written = json.loads(result.results_file.read_text(encoding="utf-8"))
    assert written["reference"] == {"name": "test (in-distribution)", "source": "demo", "n": 120, "roc_auc": 0.97,
                                    "accuracy": 0.9, "eer": 0.08, "average_precision": 0.96,
                                    **dict.fromkeys(INTERVALS)}
    assert written["sets"] == [] and written["summary"]["n_sets"] == 0 and written["summary"]["mean_roc_auc"] is None
    assert result.sets == () and result.headline_metrics == {}


def record_evaluated_model(config: CrossDatasetConfig) -> None:
    """scores.json as the evaluate stage leaves it for this model: measured on config.model_file."""
    scores = json.loads(config.scores_file.read_text(encoding="utf-8"))
    config.scores_file.write_text(json.dumps({**scores, "model_sha256": sha256_file(config.model_file)}))


def test_stage_refuses_to_score_sets_at_another_models_threshold(tmp_path: Path) -> None:
    source = write_folder_set(tmp_path / "other", FOLDER_SET)
    config = stage_config(tmp_path, (ExtraSetConfig("other", str(source)),))
    write_red_is_fake_model(config.model_file)  # scores.json records another model ("abab...")

    with pytest.raises(ModelError, match="scores of another model.*rerun the evaluate stage"):
        CrossDatasetEvaluator(config, reference_source="demo").run()
    assert not config.results_file.exists()


def test_stage_scores_each_set_at_the_raw_threshold_of_scores_json(tmp_path: Path) -> None:
    """At the calibrated 0.99 no flat image would be called fake (2 of 5 right); at the raw 0.5, 3 of 5 are."""
    source = write_folder_set(tmp_path / "other", FOLDER_SET)
    config = stage_config(tmp_path, (ExtraSetConfig("other", str(source)),))
    write_red_is_fake_model(config.model_file)
    record_evaluated_model(config)

    result = CrossDatasetEvaluator(config, reference_source="demo").run()

    assert result.headline_metrics["other"] == {"roc_auc": pytest.approx(5 / 6), "accuracy": pytest.approx(3 / 5),
                                                "eer": pytest.approx(result.sets[0]["eer"])}
    assert json.loads(result.results_file.read_text(encoding="utf-8"))["sets"] == list(result.sets)


def test_stage_marks_the_training_source_seen_and_summarizes_the_others_with_intervals(tmp_path: Path) -> None:
    training = write_folder_set(tmp_path / "training", FOLDER_SET)
    other = write_folder_set(tmp_path / "other", {"fake": [100, 50, 20, -20], "real": [30, -50, -100]})
    config = stage_config(tmp_path, (ExtraSetConfig("again", f"file://{training}"),
                                     ExtraSetConfig("other", str(other))), bootstrap=200)
    config = replace(config, ingestion=replace(config.ingestion, source=(str(training), "demo")))
    write_red_is_fake_model(config.model_file)
    record_evaluated_model(config)

    result = CrossDatasetEvaluator(config, reference_source="training + demo").run()

    written = json.loads(result.results_file.read_text(encoding="utf-8"))
    again, unseen = written["sets"]
    assert (again["seen"], unseen["seen"]) == (True, False)
    assert unseen["roc_auc_ci_low"] <= unseen["roc_auc"] <= unseen["roc_auc_ci_high"]
    summary = written["summary"]
    assert (summary["n_sets"], summary["sets"], summary["min_roc_auc_set"]) == (1, ["other"], "other")
    assert summary["mean_roc_auc"] == pytest.approx(unseen["roc_auc"])
    assert summary["mean_roc_auc_ci_low"] <= summary["mean_roc_auc"] <= summary["mean_roc_auc_ci_high"]
    assert result.headline_metrics[SUMMARY_GROUP]["mean_roc_auc"] == pytest.approx(unseen["roc_auc"])
    assert "min_roc_auc_set" not in result.headline_metrics[SUMMARY_GROUP]  # MLflow takes numbers only


def test_a_model_trained_on_faces_is_scored_on_the_face_crops_of_each_set(tmp_path: Path) -> None:
    ingestion = ingestion_config(tmp_path)
    ingestion = replace(ingestion, demo=replace(ingestion.demo, images_per_class=4, image_size=160))
    frame = prepare_extra_set(ExtraSetConfig("style_b", "demo:b"), ingestion, tmp_path / "extra", min_image_size=32)
    config = replace(stage_config(tmp_path, ()), faces=FaceCropSettings(enabled=True, min_size=16))
    crops = face_crops_of_extra_set("style_b", frame, config)
    faces_dir = (tmp_path / "extra" / "style_b" / "faces").resolve()
    assert len(crops) >= 7 and set(crops["label"]) == {0, 1}
    for path in crops["path"]:
        assert Path(path).is_relative_to(faces_dir) and Path(path).suffix == ".png"
        width, height = Image.open(path).size
        assert width < 160 and height < 160  # the face, not the whole picture
