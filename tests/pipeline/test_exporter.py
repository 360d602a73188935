"""The exporter end to end on the flat-color dataset and the hand-weighted red-is-fake model:
every variant is written, scored through the serving runtime, gated, and described in the card."""
import json
from pathlib import Path

import pytest

from deepfake_detector.components.export.exporter import Exporter
from deepfake_detector.config.entities import ExportConfig
from deepfake_detector.contracts.errors import ExportError
from deepfake_detector.inference import load_predictor
from deepfake_detector.utils.files import sha256_file
from tests.pipeline.flat_color_model import IMAGE_SIZE, TEST, VAL, write_dataset, write_red_is_fake_model

ALL_VARIANTS = ("keras", "float32", "float16", "int8_dynamic", "int8_full")
# Calibration images spanning the whole red-minus-green range the test split uses.
WIDE_TRAIN = {"fake": [250, 120, 40], "real": [-250, -120, -40]}
THRESHOLD = 0.6


def make_config(root: Path, model_file: Path, **overrides) -> ExportConfig:
    values = dict(
        root_dir=root / "export", metrics_file=root / "export_metrics.json", model_file=model_file,
        manifest_file=root / "manifest.csv", dataset_dir=root / "dataset", scores_file=root / "scores.json",
        training_run_file=root / "mlflow_run.json", project_root=root, image_size=IMAGE_SIZE,
        input_fit="crop", batch_size=4,
        variants=ALL_VARIANTS, calibration_images=50, max_float32_diff=1e-4, max_auc_drop=0.005, seed=0,
        params={"model": {"alpha": 0.35, "dropout": 0.2, "weights": "none"}, "evaluate": {"threshold": "eer"},
                "data": {"source": "demo"}})
    values.update(overrides)
    return ExportConfig(**values)


# Calibrating int8_full on two near-gray images: images with red - green inside [-10, 10] stay inside
# its activation range and keep their order; beyond it they saturate and tie.
GREY_TRAIN = {"fake": [10], "real": [-10]}
NARROW_VAL = {"fake": [9, 7, 5, 3, -1], "real": [1, -3, -5, -7, -9]}
LEARNED = {"val_roc_auc": 0.92, "val_roc_auc_ci_low": 0.75, "val_roc_auc_ci_high": 1.0, "val_above_chance": True,
           "n_val": 10, "threshold_rule": "eer", "temperature_status": "fitted", "temperature": 1.5}
AT_CHANCE = {**LEARNED, "val_roc_auc": 0.52, "val_roc_auc_ci_low": 0.2, "val_roc_auc_ci_high": 0.84,
             "val_above_chance": False}


def write_project(root: Path, train: dict, val: dict = VAL, **scores) -> Path:
    write_dataset(root, {"val": val, "test": TEST, "train": train})
    model_file = root / "model.h5"
    write_red_is_fake_model(model_file)
    (root / "scores.json").write_text(json.dumps({"threshold": THRESHOLD, "roc_auc": 0.8, "accuracy": 0.7,
                                                  "n_test": 10, "model_sha256": sha256_file(model_file),
                                                  **scores}))
    return model_file


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_project")
    model_file = write_project(root, WIDE_TRAIN, **LEARNED)
    return root, model_file, Exporter(make_config(root, model_file)).run()


def test_every_requested_variant_is_written(exported):
    _, _, result = exported
    names = {path.name for path in result.export_dir.iterdir()}
    assert {"model.keras", "model.tflite", "model_fp16.tflite", "model_int8.tflite", "model_int8_full.tflite",
            "model_card.json", "model_card.md"} <= names


def test_float32_and_keras_exports_reproduce_the_keras_model(exported):
    metrics = exported[2].metrics
    assert metrics["float32"]["max_abs_diff"] <= 1e-4
    assert metrics["keras"]["max_abs_diff"] <= 1e-6


def test_metrics_file_reports_size_parity_and_test_scores_per_variant(exported):
    _, _, result = exported
    metrics = json.loads(result.metrics_file.read_text())
    assert set(metrics) == set(ALL_VARIANTS)
    for variant, entry in metrics.items():
        assert entry["bytes"] == (result.export_dir / entry["file"]).stat().st_size, variant
        assert 0.0 <= entry["roc_auc"] <= 1.0 and 0.0 <= entry["accuracy"] <= 1.0, variant
        assert entry["val_roc_auc"] == pytest.approx(23 / 25, abs=0.005), variant
        assert entry["auc_drop"] <= 0.005 and entry["val_auc_drop"] <= 0.005, variant
        assert entry["sha256"] == sha256_file(result.export_dir / entry["file"]), variant


def test_model_card_describes_input_output_source_and_exports(exported):
    root, model_file, result = exported
    card = json.loads(result.model_card_file.read_text())
    assert card["input"]["shape"] == [None, IMAGE_SIZE, IMAGE_SIZE, 3]
    assert card["input"]["channel_order"] == "RGB" and card["input"]["value_range"] == [0.0, 255.0]
    assert card["output"]["classes"] == {"1": "fake", "0": "real"}
    assert card["output"]["threshold"] == THRESHOLD
    assert card["source"]["sha256"] == sha256_file(model_file)
    assert card["dataset"]["manifest_sha256"] == sha256_file(root / "manifest.csv")
    assert card["architecture"]["total_parameters"] == 4
    assert card["test_metrics"]["roc_auc"] == 0.8
    assert "model_sha256" not in card["test_metrics"]  # the card's source names the model
    assert not {"val_roc_auc", "threshold_rule", "temperature_status"} & card["test_metrics"].keys()
    assert (card["output"]["threshold_rule"], card["output"]["temperature_status"]) == ("eer", "fitted")
    assert card["validation"] == {"roc_auc": 0.92, "roc_auc_ci_low": 0.75, "roc_auc_ci_high": 1.0, "n": 10,
                                  "above_chance": True}
    assert card["warnings"] == []
    assert set(card["exports"]) == set(ALL_VARIANTS)
    assert card["intended_use"] and card["limitations"]
    markdown = result.model_card_markdown.read_text()
    for variant in ALL_VARIANTS:
        assert f"| {variant} |" in markdown


def test_auto_backend_serves_the_fresh_export_with_tflite(exported):
    _, model_file, result = exported
    predictor = load_predictor(model_file, result.export_dir, backend="auto")
    assert predictor.backend == "tflite"


def test_only_requested_variants_are_built(tmp_path):
    model_file = write_project(tmp_path, WIDE_TRAIN)
    result = Exporter(make_config(tmp_path, model_file, variants=("float32",))).run()
    assert set(result.metrics) == {"float32"}
    assert not (result.export_dir / "model_int8_full.tflite").exists()


def test_quantization_that_loses_auc_fails_and_keeps_the_previous_export(tmp_path):
    model_file = write_project(tmp_path, WIDE_TRAIN, **LEARNED)
    Exporter(make_config(tmp_path, model_file, variants=("float32",))).run()
    card_before = (tmp_path / "export" / "model_card.json").read_bytes()
    # Calibrated on two near-gray images, int8_full saturates the validation images beyond
    # red - green +-10, which then tie: the ranking loses validation ROC AUC.
    write_dataset(tmp_path, {"val": VAL, "test": TEST, "train": GREY_TRAIN})
    with pytest.raises(ExportError, match="int8_full loses .* validation ROC AUC.*Drop the variant"):
        Exporter(make_config(tmp_path, model_file, variants=("float32", "int8_full"))).run()
    assert (tmp_path / "export" / "model_card.json").read_bytes() == card_before
    assert not (tmp_path / "export" / "model_int8_full.tflite").exists()


def test_auc_gate_decides_on_validation_and_only_reports_test(tmp_path):
    # Validation stays inside int8_full's calibrated range; the test split does not, and loses AUC there.
    model_file = write_project(tmp_path, GREY_TRAIN, val=NARROW_VAL, **LEARNED)
    result = Exporter(make_config(tmp_path, model_file, variants=("int8_full",))).run()
    entry = result.metrics["int8_full"]
    assert entry["val_auc_drop"] <= 0.005 < entry["auc_drop"]
    card = json.loads(result.model_card_file.read_text())
    assert card["exports"]["int8_full"]["auc_drop"] == entry["auc_drop"]


def test_a_model_at_chance_is_named_by_the_gate_instead_of_a_variant(tmp_path):
    model_file = write_project(tmp_path, GREY_TRAIN, **AT_CHANCE)
    with pytest.raises(ExportError) as error:
        Exporter(make_config(tmp_path, model_file, variants=("float32", "int8_full"))).run()
    message = str(error.value)
    assert "THE MODEL DID NOT LEARN" in message and "0.200 – 0.840" in message
    assert "Drop the variant" not in message
    assert not (tmp_path / "export").exists()


def test_a_model_at_chance_that_passes_the_gates_is_exported_with_a_warning_on_its_card(tmp_path):
    model_file = write_project(tmp_path, WIDE_TRAIN, **AT_CHANCE)
    result = Exporter(make_config(tmp_path, model_file, variants=("float32",))).run()
    card = json.loads(result.model_card_file.read_text())
    assert card["validation"]["above_chance"] is False
    assert len(card["warnings"]) == 1 and "THE MODEL DID NOT LEARN" in card["warnings"][0]
    assert "> **Warning:** THE MODEL DID NOT LEARN" in result.model_card_markdown.read_text()


def test_scores_of_another_model_are_refused(tmp_path):
    model_file = write_project(tmp_path, WIDE_TRAIN)
    scores = json.loads((tmp_path / "scores.json").read_text())
    (tmp_path / "scores.json").write_text(json.dumps({**scores, "model_sha256": "0" * 64}))
    with pytest.raises(ExportError, match="scores of another model.*rerun the evaluate stage"):
        Exporter(make_config(tmp_path, model_file)).run()
    assert not (tmp_path / "export").exists()


def test_missing_test_scores_name_the_stage_to_run(tmp_path):
    model_file = write_project(tmp_path, WIDE_TRAIN)
    (tmp_path / "scores.json").unlink()
    with pytest.raises(ExportError, match="run the evaluate stage first"):
        Exporter(make_config(tmp_path, model_file)).run()
