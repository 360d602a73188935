"""`dvc repro` on a tiny copy of the repository: every stage runs, outputs land, reruns are exact.

The reproduced repository is shared and read-only: a test that changes something works on its own copy.
"""
import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.pipeline.tiny_repo import TINY_PARAMS, copy_repo, make_tiny_repo, run

pytestmark = pytest.mark.slow

ALL_EXPORTS = ("keras", "float32", "float16", "int8_dynamic", "int8_full")
SCORE_KEYS = {"accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "average_precision",
              "eer", "tpr_at_fpr_1pct", "tpr_at_fpr_1pct_note", "fpr_resolution", "log_loss", "ece_positive_class",
              "ece_top_label", "threshold", "total_parameters", "n_test", "n_val", "temperature",
              "threshold_uncalibrated", "threshold_rule", "temperature_status", "ece_positive_class_uncalibrated",
              "ece_top_label_uncalibrated", "log_loss_uncalibrated", "val_roc_auc", "val_roc_auc_ci_low",
              "val_roc_auc_ci_high", "val_above_chance",
              *(f"{metric}_ci_{end}" for metric in ("accuracy", "roc_auc", "eer", "f1", "average_precision")
                for end in ("low", "high"))}
REPORT_SECTIONS = ("summary", "metrics", "confusion", "curves", "calibration", "robustness", "cross-dataset",
                   "shortcut-audit", "errors", "params")


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory) -> Path:
    root = make_tiny_repo(tmp_path_factory.mktemp("repo"), {"export.variants": list(ALL_EXPORTS)})
    result = run(["dvc", "repro"], root)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return root


def stages_run(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


def test_repro_runs_every_stage_and_writes_scores(reproduced: Path) -> None:
    scores = json.loads((reproduced / "scores.json").read_text())
    assert SCORE_KEYS <= scores.keys()
    assert 0.0 <= scores["roc_auc"] <= 1.0
    assert scores["n_test"] > 0
    assert (reproduced / "artifacts/training/model.h5").stat().st_size > 0


def test_repro_exports_every_variant_with_parity_and_a_model_card(reproduced: Path) -> None:
    metrics = json.loads((reproduced / "export_metrics.json").read_text())
    assert set(metrics) == set(ALL_EXPORTS)
    assert metrics["float32"]["max_abs_diff"] <= 1e-4
    for entry in metrics.values():
        assert (reproduced / "artifacts/export" / entry["file"]).stat().st_size == entry["bytes"]
    card = json.loads((reproduced / "artifacts/export/model_card.json").read_text())
    assert card["output"]["threshold"] == json.loads((reproduced / "scores.json").read_text())["threshold"]
    assert card["git"]["commit"]


def test_repro_writes_robustness_cross_dataset_audit_and_report(reproduced: Path) -> None:
    robustness = json.loads((reproduced / "artifacts/robustness/robustness.json").read_text())
    assert {"clean", "jpeg", "rescale", "blur", "noise", "crop", "brightness_contrast"} <= robustness.keys()
    assert (reproduced / "artifacts/robustness/robustness.png").stat().st_size > 0
    cross = json.loads((reproduced / "cross_dataset.json").read_text())
    assert [row["name"] for row in cross["sets"]] == [
        extra["name"] for extra in yaml.safe_load((reproduced / "params.yaml").read_text())["evaluate"]["extra_sets"]]
    assert cross["sets"][0]["n"] == 2 * TINY_PARAMS["evaluate.extra_demo_images_per_class"]
    assert cross["reference"]["roc_auc"] is not None
    audit = json.loads((reproduced / "shortcut_audit.json").read_text())
    assert {"file_size", "jpeg_quality", "dimensions", "exif", "border", "thumbnail",
            "model_on_thumbnail"} <= audit["cues"].keys()
    html = (reproduced / "artifacts/report/index.html").read_text()
    assert all(f'id="{section}"' in html for section in REPORT_SECTIONS)
    assert "https://" not in html and "http://" not in html


def test_manifest_splits_cover_every_good_image(reproduced: Path) -> None:
    manifest = pd.read_csv(reproduced / "artifacts/data/manifest.csv")
    assert list(manifest.columns) == ["path", "label", "split", "sha256", "group"]
    assert set(manifest["split"]) == {"train", "val", "test"}
    assert len(manifest) == 80


def test_second_repro_does_nothing(reproduced: Path) -> None:
    result = run(["dvc", "repro"], reproduced)
    assert result.returncode == 0, result.stderr
    assert stages_run(result.stdout) == []
    assert "Data and pipelines are up to date" in result.stdout or "didn't change" in result.stdout


def test_changing_threshold_reruns_only_the_stages_that_read_it(reproduced: Path, tmp_path: Path) -> None:
    reproduced = copy_repo(reproduced, tmp_path / "repo")
    params_path = reproduced / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["evaluate"]["threshold"] = 0.5
    # One export variant instead of five: export reads both keys, so the same stages rerun, faster.
    params["export"]["variants"] = ["float32"]
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    result = run(["dvc", "repro"], reproduced)
    assert result.returncode == 0, result.stderr
    assert sorted(stages_run(result.stdout)) == ["cross_dataset", "evaluate", "export", "report", "robustness"]
    assert "MLflow tracking" not in result.stderr, "re-evaluating must keep logging to the training run"
    assert json.loads((reproduced / "scores.json").read_text())["threshold"] == 0.5
    card = json.loads((reproduced / "artifacts/export/model_card.json").read_text())
    assert (card["output"]["threshold"], card["output"]["threshold_rule"]) == (0.5, "given")


def test_metrics_and_plots_commands_work(reproduced: Path, tmp_path: Path) -> None:
    metrics = run(["dvc", "metrics", "show", "--json"], reproduced)
    assert metrics.returncode == 0, metrics.stderr
    assert "roc_auc" in metrics.stdout
    plots = run(["dvc", "plots", "show", "-o", str(tmp_path / "plots_html")], reproduced)
    assert plots.returncode == 0, plots.stderr
    assert (tmp_path / "plots_html" / "index.html").exists()


def test_mlflow_run_holds_params_metrics_plots_and_registered_model(reproduced: Path) -> None:
    database = reproduced / "mlflow.db"
    assert database.exists()
    with sqlite3.connect(database) as connection:
        runs = connection.execute("SELECT run_uuid, name, status FROM runs").fetchall()
        train_run = next(run_id for run_id, name, _ in runs if name == "train")
        metrics = {key for (key,) in connection.execute(
            "SELECT key FROM metrics WHERE run_uuid = ?", (train_run,))}
        params = {key for (key,) in connection.execute(
            "SELECT key FROM params WHERE run_uuid = ?", (train_run,))}
        tags = {key for (key,) in connection.execute(
            "SELECT key FROM tags WHERE run_uuid = ?", (train_run,))}
        models = [name for (name,) in connection.execute("SELECT name FROM registered_models")]
    assert {"test_roc_auc", "test_eer", "test_roc_auc_ci_low", "test_temperature", "val_auc", "loss",
            "export_float32_max_abs_diff", "export_int8_full_auc_drop", "robustness/jpeg_50/roc_auc",
            "cross/demo-style-b/roc_auc", "shortcut/jpeg_quality/auc"} <= metrics
    # Validation figures keep their names: nothing measured on val is logged as a test metric.
    assert "val_roc_auc" in metrics and not {name for name in metrics if name.startswith(("test_val_", "test_n_"))}
    assert {"train.batch_size", "model.alpha", "data.source"} <= params
    assert {"evaluate.threshold", "export.max_auc_drop"} <= tags
    assert models == ["deepfake-detector"]
    assert all(status == "FINISHED" for *_, status in runs)
    artifacts = {p.relative_to(reproduced / "mlruns").parts[-1] for p in (reproduced / "mlruns").rglob("*")
                 if p.is_file()}
    assert {"roc.png", "scores.json", "split_summary.json", "history.csv", "model_card.json", "model.tflite",
            "export_metrics.json", "reliability.png", "robustness.png", "cross_dataset.json", "shortcut_audit.json",
            "index.html"} <= artifacts


def test_turning_faces_on_trains_evaluates_and_exports_on_face_crops(reproduced: Path, tmp_path: Path) -> None:
    """data.faces.enabled reruns the faces stage and everything that trains or scores; evaluation then reads
    the crops, and the model card tells serving (serve.face_detector auto) to crop faces the same way."""
    reproduced = copy_repo(reproduced, tmp_path / "repo")
    params_path = reproduced / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    # The tiny set's 96-pixel pictures hold faces of 23 to 46 pixels.
    params["data"]["faces"].update(enabled=True, min_size=16)
    params["export"]["variants"] = ["float32"]
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    status = run(["dvc", "status", "--json"], reproduced)
    assert status.returncode == 0, status.stderr
    assert {"faces", "train", "evaluate", "robustness", "shortcut_audit", "export"} <= set(json.loads(status.stdout))
    result = run(["dvc", "repro", "export"], reproduced)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert {"faces", "train", "evaluate", "export"} <= set(stages_run(result.stdout))
    report = json.loads((reproduced / "artifacts/faces/faces.json").read_text())
    assert report["enabled"] and report["detection_rate"] >= 0.9, {k: v for k, v in report.items() if k != "images"}
    predictions = pd.read_csv(reproduced / "artifacts/evaluation/predictions.csv")
    assert predictions["path"].str.endswith(".png").all()
    assert (reproduced / "artifacts/faces/crops" / predictions["path"].iloc[0]).is_file()
    card = json.loads((reproduced / "artifacts/export/model_card.json").read_text())
    assert card["input"]["faces"] == {"detector": "blazeface", "crop": "native", "margin": 0.2, "min_size": 16}


def test_a_video_dataset_with_faces_on_trains_on_face_crops_of_frames_grouped_by_video(reproduced: Path,
                                                                                       tmp_path: Path) -> None:
    """data.source demo-video: the frames stage turns each clip into frames, validate keeps a clip's frames in one
    split, the faces stage crops them, and evaluation reports the video-level metrics and the aggregation rule it
    chose on the val videos, which the model card hands to serving."""
    reproduced = copy_repo(reproduced, tmp_path / "repo")
    params_path = reproduced / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["data"]["source"] = "demo-video"
    params["data"]["demo"].update(videos_per_class=8, video_seconds=1.0)
    params["data"]["video"]["frames_per_video"] = 4
    params["data"]["faces"].update(enabled=True, min_size=16)
    params["export"]["variants"] = ["float32"]
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    result = run(["dvc", "repro", "export"], reproduced)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert {"ingest", "frames", "validate", "faces", "train", "evaluate", "export"} <= set(stages_run(result.stdout))
    frames = json.loads((reproduced / "artifacts/frames/frames.json").read_text())
    assert (frames["n_videos"], frames["n_frames"], frames["n_stills"]) == (16, 64, 0)
    manifest = pd.read_csv(reproduced / "artifacts/faces/manifest.csv", keep_default_na=False)
    assert manifest["video"].str.endswith(".mp4").all()
    assert (manifest.groupby("video")["split"].nunique() == 1).all()
    assert manifest["path"].str.contains(r"\.mp4/frame_\d{3}\.png\.png$").all()
    scores = json.loads((reproduced / "scores.json").read_text())
    video = scores["video"]
    assert video["aggregation"] in ("mean", "median", "max", "top_k_mean")
    assert video["n_test_videos"] == int(manifest.loc[manifest["split"] == "test", "video"].nunique())
    assert {"roc_auc", "accuracy", "roc_auc_ci_low", "roc_auc_ci_high"} <= video.keys()
    card = json.loads((reproduced / "artifacts/export/model_card.json").read_text())
    assert card["video"]["aggregation"] == video["aggregation"]
