"""Two sources through the real ingest and validate stages, and the evaluator's metrics per source."""
import dataclasses
import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from deepfake_detector.components.data.datasets import SPLITS
from deepfake_detector.components.data.ingestion import DataIngestion
from deepfake_detector.components.data.validation import DataValidation
from deepfake_detector.components.evaluation.evaluator import Evaluator
from deepfake_detector.config.entities import DemoDataConfig
from tests.pipeline.flat_color_model import TEST, TRAIN, VAL, write_dataset, write_red_is_fake_model
from tests.pipeline.test_evaluator import make_config as make_evaluation_config
from tests.pipeline.tiny_repo import make_tiny_repo, run
from tests.unit import ingest_fixtures, validation_fixtures

DEMO = DemoDataConfig(seed=0, images_per_class=12, image_size=64)


def ingest_and_validate(root: Path, *sources: str) -> tuple[pd.DataFrame, dict]:
    ingestion = dataclasses.replace(ingest_fixtures.make_config(root, "demo"), source=sources, source_names=sources,
                                    demo=DEMO)
    DataIngestion(ingestion).run()
    validation = validation_fixtures.make_config(root, dataset_dir=ingestion.dataset_dir,
                                                 index_file=ingestion.index_file)
    DataValidation(validation).run()
    return (pd.read_csv(validation.manifest_file),
            json.loads(validation.split_summary_file.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def two_demo_families(tmp_path_factory) -> tuple[pd.DataFrame, dict]:
    return ingest_and_validate(tmp_path_factory.mktemp("two"), "demo", "demo:b")


def test_both_sources_hold_both_classes_in_every_split(two_demo_families) -> None:
    manifest, _ = two_demo_families
    present = set(zip(manifest["source"], manifest["label"], manifest["split"], strict=True))
    assert present == {(source, label, split) for source in ("demo", "demo:b") for label in (0, 1)
                       for split in SPLITS}


def test_split_summary_counts_each_source_per_split(two_demo_families) -> None:
    manifest, summary = two_demo_families
    counted = {source: {split: summary["per_source"][source][split]["total"] for split in SPLITS}
               for source in ("demo", "demo:b")}
    assert counted == {source: {split: int(((manifest["source"] == source) & (manifest["split"] == split)).sum())
                                for split in SPLITS} for source in ("demo", "demo:b")}
    assert counted["demo"] == {"train": 16, "val": 4, "test": 4}  # 24 images, split 0.7 / 0.15 / 0.15


def test_the_same_pictures_from_two_sources_never_straddle_splits(tmp_path: Path) -> None:
    # demo and demo:a draw the same family from the same seed: every image arrives twice.
    manifest, summary = ingest_and_validate(tmp_path, "demo", "demo:a")
    assert summary["duplicate_groups"] == len(manifest) // 2
    assert (manifest.groupby("group")["source"].nunique() == 2).all()
    assert (manifest.groupby("group")["split"].nunique() == 1).all()


def test_the_stages_record_the_sources_as_one_line(tmp_path: Path) -> None:
    root = make_tiny_repo(tmp_path, {"data.source": ["demo", "demo:b"], "data.demo.images_per_class": 12,
                                     "data.demo.image_size": 64})
    result = run(["python", "-m", "deepfake_detector.cli", "run", "ingest", "frames", "validate"], root)
    assert result.returncode == 0, result.stderr[-3000:]
    with sqlite3.connect(root / "mlflow.db") as connection:
        recorded = dict(connection.execute(
            "SELECT runs.name, params.value FROM params JOIN runs ON runs.run_uuid = params.run_uuid "
            "WHERE params.key = 'data.source'").fetchall())
    connection.close()
    assert recorded == {"ingest": "demo + demo:b", "validate": "demo + demo:b"}
    index = pd.read_csv(root / "artifacts" / "data_ingestion" / "index.csv")
    assert sorted(index["source"].unique()) == ["demo", "demo:b"]


# ---- evaluate --------------------------------------------------------------------------------------------------

# The flat-color test split (see flat_color_model.py), shared by two sources: "web" holds one fake only.
WEB_TEST_FAKES = {-100}


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    model_file = root / "model.h5"
    write_red_is_fake_model(model_file)
    write_dataset(root, {"val": VAL, "test": TEST, "train": TRAIN})
    manifest = pd.read_csv(root / "manifest.csv")
    is_web = manifest["path"].isin([f"fake/test_{difference}.png" for difference in WEB_TEST_FAKES])
    manifest["source"] = ["web" if web else "studio" for web in is_web]
    manifest.to_csv(root / "manifest.csv", index=False)
    return Evaluator(make_evaluation_config(root, model_file)).run()


def test_each_source_gets_its_own_test_metrics(evaluation) -> None:
    studio = evaluation.scores["per_source"]["studio"]
    # Studio's test: fakes 180 120 60 5, reals 75 -25 -90 -120 -180 (red - green). 18 of the 20
    # fake/real pairs rank right (60 and 5 fall below 75); at val's EER threshold (between 10 and 25)
    # 180 120 60 are called fake and 75 too: 7 of 9 right.
    assert (studio["n"], studio["n_fake"], studio["n_real"]) == (9, 4, 5)
    assert studio["roc_auc"] == pytest.approx(18 / 20)
    assert studio["accuracy"] == pytest.approx(7 / 9)


def test_a_source_with_one_class_in_test_has_no_ranking_metrics(evaluation) -> None:
    web = evaluation.scores["per_source"]["web"]
    assert web == {"n": 1, "n_fake": 1, "n_real": 0, "roc_auc": None, "accuracy": 0.0, "eer": None,
                   "average_precision": None}


def test_per_source_metrics_are_written_to_scores_json(evaluation) -> None:
    written = json.loads(evaluation.scores_file.read_text(encoding="utf-8"))
    assert written["per_source"] == evaluation.scores["per_source"]
    assert sorted(written["per_source"]) == ["studio", "web"]
